# storage.maintenance.*: weekly fstrim, monthly scrub of every Btrfs
# filesystem of the profile, and a monthly filtered balance
# (./jobs/btrfs-balance.sh; nixpkgs has no option for it).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types mkIf;
  top = config.storage;
  cfg = config.storage.maintenance;
  L = import ./lib.nix { inherit lib; } top;

  # One mount point per Btrfs filesystem.
  mountPoints = lib.filter (m: m != null) (map L.fsMountPoint L.btrfsDisks);

  balance = pkgs.writeShellApplication {
    name = "btrfs-balance";
    runtimeInputs = [
      pkgs.btrfs-progs
      pkgs.coreutils
      pkgs.gnugrep
    ];
    text = builtins.readFile ./jobs/btrfs-balance.sh;
  };
  usage = types.ints.between 0 100;
in
{
  options.storage.maintenance = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Trim, scrub and balance timers for the profile's filesystems.";
    };
    trim.interval = mkOption {
      type = types.str;
      default = "weekly";
      description = "`services.fstrim.interval` (systemd calendar expression).";
    };
    scrub.interval = mkOption {
      type = types.str;
      default = "monthly";
      description = "`services.btrfs.autoScrub.interval`; the scrub covers every Btrfs filesystem of the profile.";
    };
    balance = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Monthly filtered balance (`btrfs-balance.timer`).";
      };
      interval = mkOption {
        type = types.str;
        default = "monthly";
        description = "`OnCalendar=` of `btrfs-balance.timer`.";
      };
      dataUsage = mkOption {
        type = usage;
        default = 50;
        description = "Only data block groups at most this % full are rewritten (`-dusage=`).";
      };
      metadataUsage = mkOption {
        type = usage;
        default = 30;
        description = "Only metadata block groups at most this % full are rewritten (`-musage=`).";
      };
    };
    fileSystems = mkOption {
      type = types.listOf types.str;
      readOnly = true;
      default = mountPoints;
      defaultText = lib.literalMD "one mount point per Btrfs filesystem of the profile (`/` for the system disk)";
      description = "The mount points scrub and balance work on (read-only).";
    };
  };

  config = mkIf (top.enable && cfg.enable) {
    services.fstrim = {
      enable = true;
      interval = cfg.trim.interval;
    };
    services.btrfs.autoScrub = {
      enable = true;
      interval = cfg.scrub.interval;
      inherit (cfg) fileSystems;
    };

    systemd.services.btrfs-balance = mkIf cfg.balance.enable {
      description = "Filtered Btrfs balance of ${lib.concatStringsSep " " cfg.fileSystems}";
      after = [ "local-fs.target" ];
      serviceConfig = {
        Type = "oneshot";
        Nice = 19;
        IOSchedulingClass = "idle";
        ExecStart = "${balance}/bin/btrfs-balance -d ${toString cfg.balance.dataUsage} -m ${toString cfg.balance.metadataUsage} ${lib.concatMapStringsSep " " lib.escapeShellArg cfg.fileSystems}";
      };
    };
    systemd.timers.btrfs-balance = mkIf cfg.balance.enable {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.balance.interval;
        Persistent = true;
        RandomizedDelaySec = "1h";
      };
    };
  };
}
