# storage.monitoring.*: the results of rotation, snapshots, backups, checks
# and drills as Prometheus metrics (node_exporter's textfile collector, on
# 127.0.0.1 unless the user opens it), alerting rules tested with promtool,
# the same metrics in Datadog (the agent's OpenMetrics check on the local
# exporter, a narrow list: each is a billed custom metric), DogStatsD
# service checks when a job fails, and `storage status`. Every job writes a
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
  stateDir = "/var/lib/storage";
  b = top.backup;
  snap = top.snapshots;

  rootRotate = config.storage.impermanence;
  statusArgs =
    [
      "--state-dir"
      stateDir
      "--price-per-tb"
      (toString b.b2.pricePerTBMonth)
      "--budget"
      (toString b.b2.monthlyBudget)
    ]
    ++ lib.concatMap (d: [
      "--filesystem"
      "${snap.topLevelMountBase}/${d}"
    ]) (lib.filter (d: top.disks.${d}.filesystem or "btrfs" == "btrfs") L.btrfsDisks)
    ++ (
      if rootRotate.enable then
        [
          "--root-rotate"
          "${rootRotate.package}/bin/root-rotate"
          "--root-rotate-device"
          rootRotate.device
        ]
      else
        [ "--no-rotation" ]
    );

  status = pkgs.writeShellApplication {
    name = "storage-status";
    runtimeInputs = [ pkgs.jq pkgs.coreutils pkgs.gawk pkgs.btrfs-progs pkgs.gnugrep pkgs.gnused ];
    text = builtins.readFile ./jobs/storage-status.sh;
  };
  # `storage status [ARGS]`: the admin's command, with this host's inputs.
  storageCommand = pkgs.writeShellApplication {
    name = "storage";
    runtimeInputs = [ status ];
    text = ''
      exec storage-cli ${lib.escapeShellArgs statusArgs} "$@"
    '';
  };
in
{
  options.storage.monitoring = {
    enable = lib.mkEnableOption "metrics, alerts and `storage status` for rotation, snapshots, backups, checks and drills";
  };

  config = mkIf (top.enable && cfg.enable) { };
}
