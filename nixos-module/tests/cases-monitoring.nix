# Eval tests of storage.monitoring (nixos-module/storage/monitoring.nix)
# against real NixOS, on the hetzner example host (which enables monitoring
# and Datadog) with Prometheus on the host: the node exporter's flags, the
# inputs of `storage status`, the alert rule file, the Datadog agent's
# OpenMetrics check as rendered (the same list as
# ../storage/monitoring/datadog-openmetrics.json) and its API key only as a
# file path, the metrics refreshed after every job, DogStatsD service checks
# on failure and success, and the API key assertion. Run by ./run.
{ nixos, ... }:
let
  inherit (nixos) lib failedAssertions;
  host =
    extra:
    (nixos.exampleHost {
      name = "hetzner";
      systemdInitrd = true;
      persistence = "impermanence";
      extra = [ { services.prometheus.enable = true; } ] ++ extra;
    }).config;
  c = host [ ];
  etcText = n: c.environment.etc.${n}.source.text or c.environment.etc.${n}.text;
  # "-+/nix/store/…-storage/bin/storage" -> "-+<storage>" (systemd's prefixes kept).
  unstore =
    s:
    builtins.concatStringsSep " " (
      map (
        w:
        let
          m = builtins.match "([-+@!:]*)/nix/store/.*/([^/]+)" w;
        in
        if m == null then w else "${builtins.elemAt m 0}<${builtins.elemAt m 1}>"
      ) (lib.splitString " " (builtins.replaceStrings [ "\n" ] [ " " ] s))
    );
  jobs = [ "btrbk-storage" "restic-backups-storage" "storage-backup-check" "storage-restore-drill" "root-rotate-prune" ];
in
{
  testMonitoringHetzner = {
    expr = {
      failed = failedAssertions c;
      # The flags after the program.
      exporter = lib.drop 1 (lib.filter (w: w != "" && w != "\\") (lib.splitString " " (builtins.replaceStrings [ "\n" ] [ " " ] c.systemd.services.prometheus-node-exporter.serviceConfig.ExecStart)));
      firewall = c.services.prometheus.exporters.node.openFirewall;
      statusArgs = lib.splitString "\n" c.environment.etc."storage/status.args".text;
      rules = map baseNameOf c.services.prometheus.ruleFiles;
      openmetrics = builtins.fromJSON (etcText "datadog-agent/conf.d/openmetrics.d/conf.yaml");
      # The key is read from its file at start; no rendered file holds it.
      keyInConfig = lib.hasInfix "api_key" (etcText "datadog-agent/datadog.yaml");
      keyFileRead = lib.hasInfix "DD_API_KEY=$(head -n 1 /run/secrets/datadog-api-key)" c.systemd.services.datadog-agent.script;
      refreshAfter = map (u: map unstore (lib.filter (lib.hasInfix "storage status") c.systemd.services.${u}.serviceConfig.ExecStopPost)) jobs;
      notify = map (u: { inherit (c.systemd.services.${u}) onFailure onSuccess; }) jobs;
      notifyExec = unstore c.systemd.services."storage-notify-failed@".serviceConfig.ExecStart;
      timer = c.systemd.timers.storage-metrics.timerConfig;
      metricsExec = unstore c.systemd.services.storage-metrics.serviceConfig.ExecStart;
    };
    expected = {
      failed = [ ];
      exporter = [ "--web.listen-address" "127.0.0.1:9100" "--collector.textfile.directory=/var/lib/prometheus-node-exporter-text" ];
      firewall = false;
      statusArgs = [
        "--state-dir" "/var/lib/storage"
        "--price-per-tb" "6.000000" "--budget" "2.000000"
        "--drill-interval" "604800"
        "--root-rotate-args"
        "--device /dev/disk/by-partlabel/disk-main-root --mount-point /btrfs_tmp --archive @old_roots --keep-days 30 --keep-at-least 3"
        ""
      ];
      rules = [ "alerts.yml" ];
      openmetrics = lib.importJSON ../storage/monitoring/datadog-openmetrics.json // { init_config = { }; };
      keyInConfig = false;
      keyFileRead = true;
      refreshAfter = map (_: [ "-+<storage> status --prometheus /var/lib/prometheus-node-exporter-text/storage.prom" ]) jobs;
      notify = map (u: let j = { "btrbk-storage" = "snapshots"; "restic-backups-storage" = "backup"; "storage-backup-check" = "backup-check"; "storage-restore-drill" = "restore-drill"; "root-rotate-prune" = "rotation"; }.${u}; in {
        onFailure = [ "storage-notify-failed@${j}.service" ];
        onSuccess = [ "storage-notify-ok@${j}.service" ];
      }) jobs;
      notifyExec = "<storage-notify> %i critical 'storage job %i failed on %H; see storage status and the journal of its unit'";
      timer = { OnBootSec = "1min"; OnUnitActiveSec = "5min"; };
      metricsExec = "<storage> status --prometheus /var/lib/prometheus-node-exporter-text/storage.prom";
    };
  };

  # Every storage.* example host, with Prometheus on the host: the exporter
  # on 127.0.0.1 with the textfile directory, the rule file, the metrics
  # timer; the servers (Datadog) render the OpenMetrics list and keep the
  # API key out of every rendered file.
  testMonitoringEveryExampleHost = {
    expr = lib.genAttrs [ "hetzner" "contabo" "ovh" "zephyrus" "yoga" ] (
      name:
      let
        h =
          (nixos.exampleHost {
            inherit name;
            systemdInitrd = true;
            persistence = "impermanence";
            extra = [ { services.prometheus.enable = true; } ];
          }).config;
        dd = h.services.datadog-agent.enable;
        etc = n: h.environment.etc.${n}.source.text;
      in
      {
        failed = failedAssertions h;
        exporter = lib.hasSuffix "--web.listen-address 127.0.0.1:9100 --collector.textfile.directory=/var/lib/prometheus-node-exporter-text\n" h.systemd.services.prometheus-node-exporter.serviceConfig.ExecStart;
        rules = map baseNameOf h.services.prometheus.ruleFiles;
        metricsTimer = h.systemd.timers ? storage-metrics;
        datadog = dd;
        openmetrics = if dd then (builtins.fromJSON (etc "datadog-agent/conf.d/openmetrics.d/conf.yaml")).instances else null;
        keyInConfig = if dd then lib.hasInfix "api_key" (etc "datadog-agent/datadog.yaml") else null;
      }
    );
    expected =
      let
        om = (lib.importJSON ../storage/monitoring/datadog-openmetrics.json).instances;
        host = server: {
          failed = [ ];
          exporter = true;
          rules = [ "alerts.yml" ];
          metricsTimer = true;
          datadog = server;
          openmetrics = if server then om else null;
          keyInConfig = if server then false else null;
        };
      in
      {
        hetzner = host true;
        contabo = host true;
        ovh = host true;
        zephyrus = host false;
        yoga = host false;
      };
  };

  testMonitoringAssertions = {
    expr = map (k: builtins.filter (lib.hasPrefix "storage.monitoring") (failedAssertions (host [ { storage.monitoring.datadog.apiKeyFile = lib.mkForce k; } ]))) [
      "/nix/store/0000000000000000000000000000000-dd-key"
      "dd-key-itself"
    ];
    expected = lib.genList (_: [
      ''storage.monitoring.datadog.apiKeyFile must be the absolute path of a root-only file holding the key, as a string outside the Nix store, e.g. storage.monitoring.datadog.apiKeyFile = "/run/secrets/datadog-api-key";''
    ]) 2;
  };
}
