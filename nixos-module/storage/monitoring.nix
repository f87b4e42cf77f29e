# storage.monitoring.*: the results of rotation, snapshots, backups, checks
# and drills as Prometheus metrics (node_exporter's textfile collector, on
# 127.0.0.1 unless the user opens it), alerting rules tested with promtool
# (./monitoring/alerts.yml), the same metrics in Datadog (the agent's
# OpenMetrics check on the local exporter with a narrow list, each one a
# billed custom metric: ./monitoring/datadog-openmetrics.json), DogStatsD
# service checks when a job ends, and `storage status`. Every job writes a
# JSON result to /var/lib/storage; ./jobs/storage-status.sh reads them once
# and renders the screen, --json and the metrics file, so the three agree.
# Reference: docs/reference/monitoring.md, docs/reference/monitoring-alerts.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types mkIf;
  top = config.storage;
  cfg = config.storage.monitoring;
  L = import ./lib.nix { inherit lib; } top;
  metricsFile = "${cfg.textfileDirectory}/storage.prom";
  imp = config.storage.impermanence;
  b = top.backup;

  # storage-status's inputs on this host, one argument per line in
  # /etc/storage/status.args: `storage status` and the metrics use the same.
  statusArgs =
    [ "--state-dir" "/var/lib/storage" ]
    ++ lib.optionals b.enable [
      "--price-per-tb" (toString b.b2.pricePerTBMonth)
      "--budget" (toString b.b2.monthlyBudget)
    ]
    ++ lib.optionals (b.enable && b.drill.enable) [ "--drill-interval" (toString drillInterval) ]
    ++ (
      if imp.enable then
        [
          "--root-rotate-args"
          (lib.concatStringsSep " " [
            "--device" imp.device
            "--mount-point" imp.mountPoint
            "--archive" imp.archiveSubvolume
            "--keep-days" (toString imp.keepDays)
            "--keep-at-least" (toString imp.keepAtLeast)
          ])
        ]
      else
        [ "--no-rotation" ]
    );
  # Weekly drills (hetzner's "Sun 06:00") or monthly; the drill is stale 5
  # days after its period.
  drillInterval = if lib.hasInfix "-01 " b.drill.schedule || b.drill.schedule == "monthly" then 31 * 86400 else 7 * 86400;

  status = pkgs.writeShellApplication {
    name = "storage-status";
    runtimeInputs = [ pkgs.jq pkgs.coreutils pkgs.gawk pkgs.btrfs-progs pkgs.gnugrep pkgs.gnused pkgs.util-linux ]
      ++ lib.optional imp.enable imp.package;
    text = builtins.readFile ./jobs/storage-status.sh;
  };
  # `storage status [--json]`: the admin's command.
  storageCommand = pkgs.writeShellApplication {
    name = "storage";
    runtimeInputs = [ status ];
    text = builtins.readFile ./jobs/storage.sh;
  };
  # `-`: storage-status exits 1/2 on a warning/failure, which is what the
  # metrics report; the job's own result must not change because of it.
  refresh = "-+${storageCommand}/bin/storage status --prometheus ${metricsFile}";
  notify = pkgs.writeShellApplication {
    name = "storage-notify";
    runtimeInputs = [ pkgs.coreutils pkgs.hostname ];
    text = builtins.readFile ./jobs/notify.sh;
  };

  # The job units and the job name each reports as (from the options, not
  # from config.systemd.services, which this module defines).
  jobUnits =
    lib.optionalAttrs (top.snapshots.enable && top.snapshots.subvolumes != [ ]) { "btrbk-storage" = "snapshots"; }
    // lib.optionalAttrs top.backup.enable (
      { "restic-backups-storage" = "backup"; "storage-backup-check" = "backup-check"; }
      // lib.optionalAttrs top.backup.drill.enable { "storage-restore-drill" = "restore-drill"; }
    )
    // lib.optionalAttrs (imp.enable && imp.prune.enable) { "root-rotate-prune" = "rotation"; };
  ddMetrics = (lib.importJSON ./monitoring/datadog-openmetrics.json).instances;
in
{
  options.storage.monitoring = {
    enable = lib.mkEnableOption "metrics, alerting rules and DogStatsD notifications for rotation, snapshots, backups, checks and drills";

    textfileDirectory = mkOption {
      type = types.strMatching "/[^[:space:]]*[^/]";
      default = "/var/lib/prometheus-node-exporter-text";
      description = "node_exporter's textfile directory; `storage-status` writes `storage.prom` there after every job and every `refreshInterval`.";
    };
    refreshInterval = mkOption {
      type = types.str;
      default = "5min";
      description = "How often `storage-metrics.timer` rewrites the metrics (ages, disks, rotation) between jobs.";
    };
    nodeExporter.enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Run `services.prometheus.exporters.node` with the textfile collector
        on this directory. It listens on `127.0.0.1:9100` (`mkDefault`): set
        `services.prometheus.exporters.node.listenAddress` and `openFirewall`
        yourself to expose it to a network.
      '';
    };
    alertRules = mkOption {
      type = types.path;
      readOnly = true;
      default = ./monitoring/alerts.yml;
      defaultText = lib.literalMD "`nixos-module/storage/monitoring/alerts.yml`";
      description = ''
        The Prometheus alerting rules (tested with `promtool test rules`).
        Added to `services.prometheus.ruleFiles` when this host runs
        Prometheus; otherwise load the file on your Prometheus server.
      '';
    };
    datadog = {
      enable = lib.mkEnableOption "the Datadog agent: the storage metrics through its OpenMetrics check, and DogStatsD service checks when a job ends";
      apiKeyFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/secrets/datadog-api-key";
        description = "Absolute path, as a string, of a root-only file holding the Datadog API key (never the key itself; a `/nix/store` path fails an assertion).";
      };
      site = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "datadoghq.eu";
        description = "`services.datadog-agent.site` (null: the agent's default, datadoghq.com).";
      };
    };
  };

  config = mkIf (top.enable && cfg.enable) (
    lib.mkMerge [
      {
        environment.systemPackages = [ storageCommand ];
        environment.etc."storage/status.args".text = lib.concatLines statusArgs;
        systemd.tmpfiles.rules = [
          "d /var/lib/storage 0700 root root -"
          "d ${cfg.textfileDirectory} 0755 root root -"
        ];
        # (backup.nix persists it too when backups are on)
        storage.impermanence.persistence.directories = lib.mkIf (top.impermanentRoot && !b.enable) [ "/var/lib/storage" ];

        systemd.services = lib.mkMerge [
          {
            storage-metrics = {
              description = "Write the storage metrics for node_exporter's textfile collector";
              serviceConfig = {
                Type = "oneshot";
                ExecStart = "${storageCommand}/bin/storage status --prometheus ${metricsFile}";
                SuccessExitStatus = "1 2"; # warnings and failures are reported, not errors
              };
            };
          }
          # Fresh metrics as soon as a job ends, whatever its result.
          (lib.mapAttrs (_: _: { serviceConfig.ExecStopPost = lib.mkAfter [ refresh ]; }) jobUnits)
        ];
        systemd.timers.storage-metrics = {
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnBootSec = "1min";
            OnUnitActiveSec = cfg.refreshInterval;
          };
        };

        services.prometheus.exporters.node = mkIf cfg.nodeExporter.enable {
          enable = true;
          listenAddress = lib.mkDefault "127.0.0.1";
          port = lib.mkDefault 9100;
          extraFlags = [ "--collector.textfile.directory=${cfg.textfileDirectory}" ];
        };
        services.prometheus.ruleFiles = mkIf config.services.prometheus.enable [ cfg.alertRules ];
      }

      (mkIf cfg.datadog.enable {
        assertions = [
          {
            assertion = L.secretProblem cfg.datadog.apiKeyFile == null;
            message = ''storage.monitoring.datadog.apiKeyFile must be the absolute path of a root-only file holding the key, as a string outside the Nix store, e.g. storage.monitoring.datadog.apiKeyFile = "/run/secrets/datadog-api-key";'';
          }
          {
            assertion = cfg.nodeExporter.enable || config.services.prometheus.exporters.node.enable;
            message = "storage.monitoring.datadog scrapes the local node exporter: keep storage.monitoring.nodeExporter.enable = true.";
          }
        ];
        services.datadog-agent = {
          enable = true;
          apiKeyFile = cfg.datadog.apiKeyFile;
          site = lib.mkIf (cfg.datadog.site != null) cfg.datadog.site;
          # Not among nixpkgs' default integrations (disk, network, …).
          extraIntegrations.openmetrics = _: [ ];
          checks.openmetrics = {
            init_config = { };
            instances = map (
              i: i // { openmetrics_endpoint = "http://127.0.0.1:${toString config.services.prometheus.exporters.node.port}/metrics"; }
            ) ddMetrics;
          };
        };
        # One DogStatsD service check per job run: ok or critical, and an
        # event on failure (./jobs/notify.sh).
        systemd.services = lib.mkMerge [
          (lib.mapAttrs (_: job: {
            onFailure = [ "storage-notify-failed@${job}.service" ];
            onSuccess = [ "storage-notify-ok@${job}.service" ];
          }) jobUnits)
          {
            "storage-notify-failed@" = {
              description = "DogStatsD: storage job %i failed";
              serviceConfig.Type = "oneshot";
              serviceConfig.ExecStart = "${notify}/bin/storage-notify %i critical ${lib.escapeShellArg "storage job %i failed on %H; see storage status and the journal of its unit"}";
            };
            "storage-notify-ok@" = {
              description = "DogStatsD: storage job %i succeeded";
              serviceConfig.Type = "oneshot";
              serviceConfig.ExecStart = "${notify}/bin/storage-notify %i ok ${lib.escapeShellArg "storage job %i succeeded on %H"}";
            };
          }
        ];
      })
    ]
  );
}
