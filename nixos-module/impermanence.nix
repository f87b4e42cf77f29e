# storage.impermanence: run root-rotate in stage 1 (systemd or scripted) to
# archive the Btrfs root subvolume at every boot, and prune after boot.
# CLI contract: docs/reference/cli.md. Option reference: docs/reference/nixos-options.md.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkMerge
    types
    literalExpression
    ;

  cfg = config.storage.impermanence;
  exe = "${cfg.package}/bin/root-rotate";

  # A single path component, as the CLI demands for --root and --archive
  # (exit code 2 otherwise). Checking at eval time beats a failed boot.
  subvolName = types.addCheck (types.strMatching "[^/[:space:]]+") (s: s != "." && s != "..") // {
    description = "single path component (no `/`, not `.` or `..`)";
  };
  absPath = types.strMatching "/[^[:space:]]*[^/[:space:]]";

  # Quoting that does not depend on the lib version (escapeShellArg changed
  # from "always quote" to "quote when needed"), so hook text is stable.
  safe = s: builtins.match "[A-Za-z0-9_./:@+=,-]+" s != null;
  shellArg = s: if safe s then s else lib.escapeShellArg s;
  # systemd Exec lines expand % specifiers and $VARS even inside quotes.
  execArg =
    s:
    let
      e = builtins.replaceStrings [ "%" "$" "\\" "\"" ] [ "%%" "$$" "\\\\" "\\\"" ] s;
    in
    if safe s then e else "\"${e}\"";

  # Flags shared by `rotate` (stage 1) and `prune` (stage 2), in CLI order.
  flagsFor =
    cmd: budgetMs:
    [
      cmd
      "--device"
      cfg.device
      "--mount-point"
      cfg.mountPoint
    ]
    ++ lib.optionals (cmd == "rotate") [
      "--root"
      cfg.rootSubvolume
    ]
    ++ [
      "--archive"
      cfg.archiveSubvolume
      "--keep-days"
      (toString cfg.keepDays)
      "--keep-at-least"
      (toString cfg.keepAtLeast)
      "--budget-ms"
      (toString budgetMs)
    ];

  rotateFlags = flagsFor "rotate" cfg.budget;
  pruneFlags = flagsFor "prune" cfg.prune.budget;

  deviceUnit = "${utils.escapeSystemdPath cfg.device}.device";

  # Budget covers pruning; mounting, the swap and the commit come on top.
  # Whole seconds, rounded up, plus a fixed grace for a slow commit.
  timeoutSec = (cfg.budget + 999) / 1000 + 30;

  rotateCmd = lib.concatMapStringsSep " " shellArg ([ "root-rotate" ] ++ rotateFlags);

  # Scripted stage 1 has no `set -e`: a failing command is ignored unless we
  # call `fail`. Keep this text free of at-sign-delimited words: stage-1
  # templating rejects them.
  scriptedHookText = ''
    # storage.impermanence: archive the root subvolume, start from a blank one
    rr_i=0
    while [ ! -e ${shellArg cfg.device} ] && [ "$rr_i" -lt 20 ]; do
      sleep 1
      rr_i=$((rr_i + 1))
    done
    ${
      if cfg.onFailure == "fail" then
        "${rotateCmd} || fail"
      else
        "${rotateCmd} || echo \"root-rotate failed (exit $?); booting the previous root unchanged\""
    }
  '';

  rootFs = config.fileSystems."/" or null;
  rootSubvolOk =
    rootFs != null
    && rootFs.device == cfg.device
    && (rootFs.fsType or "btrfs") == "btrfs"
    && (
      builtins.elem "subvol=${cfg.rootSubvolume}" rootFs.options
      || builtins.elem "subvol=/${cfg.rootSubvolume}" rootFs.options
    );

  persistFs =
    if cfg.persistentMount == null then null else config.fileSystems.${cfg.persistentMount} or null;
in
{
  options.storage.impermanence = {
    enable = mkEnableOption ''
      root-rotate: archive the Btrfs root subvolume at every boot (impermanence)
      and prune old archives'';

    package = mkOption {
      type = types.package;
      default = pkgs.pkgsStatic.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.pkgsStatic.callPackage ./package.nix { } # this flake's static build";
      description = ''
        The `root-rotate` package. It must provide `bin/root-rotate`; a static
        binary is expected, because it is copied into the initrd as-is.
      '';
    };

    device = mkOption {
      type = types.strMatching "/dev/.+";
      default =
        if config.fileSystems ? "/" && config.fileSystems."/".device != null then
          config.fileSystems."/".device
        else
          throw "storage.impermanence: set storage.impermanence.device (fileSystems.\"/\".device is not set)";
      defaultText = literalExpression ''config.fileSystems."/".device'';
      example = "/dev/disk/by-partlabel/disk-main-root";
      description = ''
        Block device holding the Btrfs filesystem (`--device`). Use a stable
        `/dev/disk/by-*` path: in systemd stage 1 the rotation waits for this
        exact device unit.
      '';
    };

    mountPoint = mkOption {
      type = absPath;
      default = "/btrfs_tmp";
      example = "/run/root-rotate";
      description = ''
        Where the top-level volume (`subvolid=5`) is mounted while root-rotate
        runs (`--mount-point`). Created and removed again by root-rotate;
        nothing stays mounted.
      '';
    };

    rootSubvolume = mkOption {
      type = subvolName;
      default = "@root";
      example = "root";
      description = ''
        The live root subvolume, directly under the top level (`--root`).
        `/` must be mounted from it (`subvol=@root`); an assertion checks this.
      '';
    };

    archiveSubvolume = mkOption {
      type = subvolName;
      default = "@old_roots";
      example = "old_roots";
      description = ''
        Directory (normally a subvolume) directly under the top level that
        holds archived roots (`--archive`). Created if missing.
      '';
    };

    keepDays = mkOption {
      type = types.ints.unsigned;
      default = 30;
      example = 14;
      description = "Archives older than this many days are due for deletion (`--keep-days`).";
    };

    keepAtLeast = mkOption {
      type = types.ints.unsigned;
      default = 3;
      example = 10;
      description = ''
        The N most recently archived roots are always kept, whatever their age
        (`--keep-at-least`). Protects against a wrong clock.
      '';
    };

    budget = mkOption {
      type = types.ints.positive;
      default = 5000;
      example = 2000;
      description = ''
        Time budget in **milliseconds** for the boot-time run (`--budget-ms`).
        Pruning stops when it is spent; the rest is left to
        `root-rotate-prune.service`. Rotation itself is never skipped. In
        systemd stage 1 the unit's `TimeoutStartSec` is this budget rounded up
        to whole seconds plus 30 s.
      '';
    };

    onFailure = mkOption {
      type = types.enum [
        "continue"
        "fail"
      ];
      default = "continue";
      example = "fail";
      description = ''
        What a failed rotation does to the boot.
        - `"continue"`: log it and boot the previous root unchanged
          (systemd: `wantedBy = [ "initrd.target" ]`; scripted: the exit code is
          logged and ignored).
        - `"fail"`: stop the boot (systemd: `requiredBy = [ "initrd.target" ]`,
          which leads to `emergency.target`; scripted: `|| fail`, which panics or
          opens a shell per the kernel parameters `boot.panic_on_fail` /
          `boot.shell_on_fail`, e.g. `boot.kernelParams = [ "boot.shell_on_fail" ];`).
      '';
    };

    scriptedHook = mkOption {
      type = types.enum [
        "postResumeCommands"
        "postDeviceCommands"
      ];
      default = "postResumeCommands";
      example = "postDeviceCommands";
      description = ''
        Scripted stage 1 only (`boot.initrd.systemd.enable = false`): the hook
        that runs root-rotate. `postResumeCommands` runs after the hibernation
        resume attempt; `postDeviceCommands` runs before it, and mounting Btrfs
        read-write there corrupts a system that then resumes. Use
        `postDeviceCommands` only if you know you never hibernate. See
        docs/explanation/initrd-ordering.md.
      '';
    };

    persistentMount = mkOption {
      type = types.nullOr absPath;
      default = "/persist";
      example = null;
      description = ''
        Mount point of the persistent subvolume. It must be mounted in stage 1
        (`fileSystems."/persist".neededForBoot = true`); an assertion checks
        this. It is also where the persistence backend keeps state. `null`
        turns the check off (and persistence with it).
      '';
    };

    prune = {
      enable = mkOption {
        type = types.bool;
        default = true;
        example = false;
        description = ''
          Run `root-rotate prune` after boot (`root-rotate-prune.service` and
          `.timer`) to finish deletions the boot-time budget deferred.
        '';
      };
      budget = mkOption {
        type = types.ints.positive;
        default = 120000;
        example = 600000;
        description = "Time budget in milliseconds for `root-rotate-prune.service` (`--budget-ms`).";
      };
      onCalendar = mkOption {
        type = types.str;
        default = "daily";
        example = "hourly";
        description = ''
          `OnCalendar=` of `root-rotate-prune.timer`, in addition to a run
          5 minutes after boot. See {manpage}`systemd.time(7)`.
        '';
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = rootSubvolOk;
          message = ''
            storage.impermanence: set fileSystems."/" = { device = "${cfg.device}"; fsType = "btrfs"; options = [ "subvol=${cfg.rootSubvolume}" ]; }
            (or set storage.impermanence.device / rootSubvolume to match). root-rotate replaces
            subvolume ${cfg.rootSubvolume} on ${cfg.device} at each boot, so / must be mounted from it.'';
        }
        {
          assertion = cfg.persistentMount == null || (persistFs != null && persistFs.neededForBoot);
          message = ''
            storage.impermanence: set fileSystems."${toString cfg.persistentMount}".neededForBoot = true
            (and make sure fileSystems."${toString cfg.persistentMount}" is defined), or set
            storage.impermanence.persistentMount = null. Persistent state must be mounted in stage 1.'';
        }
        {
          assertion = cfg.rootSubvolume != cfg.archiveSubvolume;
          message = "storage.impermanence: set rootSubvolume and archiveSubvolume to different names.";
        }
        {
          # Same rule stage-1 templating enforces, checked here for a clear error.
          assertion = builtins.length (builtins.split "@[a-zA-Z_][0-9A-Za-z_'-]*@" scriptedHookText) == 1;
          message = "storage.impermanence: set rootSubvolume/archiveSubvolume/device without at-sign-delimited words; scripted stage 1 rejects them.";
        }
      ];

      # For `root-rotate list|diff|rollback` by hand.
      environment.systemPackages = [ cfg.package ];
    }

    # systemd stage 1 (default since NixOS 26.05).
    (mkIf config.boot.initrd.systemd.enable {
      boot.initrd.systemd.storePaths = [ exe ];
      boot.initrd.systemd.extraBin.root-rotate = exe; # emergency shell use
      boot.initrd.systemd.services.root-rotate = {
        description = "Archive the Btrfs root subvolume and start from a blank one";
        unitConfig.DefaultDependencies = "no";
        requires = [ deviceUnit ];
        # systemd-hibernate-resume.service is ordered before local-fs-pre.target,
        # so after it we never touch a filesystem a resume still needs.
        after = [
          deviceUnit
          "local-fs-pre.target"
        ];
        before = [
          "sysroot.mount"
          "shutdown.target"
        ];
        conflicts = [ "shutdown.target" ];
        wantedBy = lib.optional (cfg.onFailure == "continue") "initrd.target";
        requiredBy = lib.optional (cfg.onFailure == "fail") "initrd.target";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = lib.concatMapStringsSep " " execArg ([ exe ] ++ rotateFlags);
          # Oneshot units have no start timeout unless one is set.
          TimeoutStartSec = "${toString timeoutSec}s";
        };
      };
    })

    # Scripted stage 1: both the binary and the hook, never with systemd stage 1
    # (it asserts on every scripted hook).
    (mkIf (!config.boot.initrd.systemd.enable) {
      boot.initrd.extraUtilsCommands = ''
        copy_bin_and_libs ${exe}
      '';
      boot.initrd.extraUtilsCommandsTest = ''
        $out/bin/root-rotate --version
      '';
      boot.initrd.${cfg.scriptedHook} = lib.mkAfter scriptedHookText;
    })

    (mkIf cfg.prune.enable {
      systemd.services.root-rotate-prune = {
        description = "Prune archived Btrfs roots deferred by the boot-time budget";
        after = [ "local-fs.target" ];
        serviceConfig = {
          Type = "oneshot";
          ExecStart = lib.concatMapStringsSep " " execArg ([ exe ] ++ pruneFlags);
          # Keep the temporary top-level mount out of the host's namespace.
          PrivateMounts = true;
          PrivateNetwork = true;
          NoNewPrivileges = true;
          Nice = 19;
          IOSchedulingClass = "idle";
        };
      };
      systemd.timers.root-rotate-prune = {
        description = "Prune archived Btrfs roots";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnBootSec = "5min";
          OnCalendar = cfg.prune.onCalendar;
          Persistent = true;
          RandomizedDelaySec = "10min";
        };
      };
    })
  ]);
}
