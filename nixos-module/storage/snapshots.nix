# storage.snapshots.*: read-only Btrfs snapshots of the profile's persistent
# subvolumes into `@snapshots`, with per-profile retention, through nixpkgs'
# btrbk module (services.btrbk.instances.storage -> /etc/btrbk/storage.conf,
# btrbk-storage.service and .timer). Before each run a quiesce step
# (./jobs/quiesce.sh) makes Redis write its RDB file and PostgreSQL
# checkpoint. After each run, failed ones included, ./jobs/snapshot-report.sh
# (ExecStopPost) writes /var/lib/storage/snapshots.json for storage-status.
# Reference: docs/reference/storage-profiles.md#snapshots,
# docs/reference/monitoring.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkOption
    mkIf
    types
    literalExpression
    ;
  top = config.storage;
  cfg = config.storage.snapshots;
  L = import ./lib.nix { inherit lib; } top;

  # Subvolumes never snapshotted by default: rebuildable (@nix, @cache,
  # container images), churning logs, the snapshot and archive areas
  # themselves, and @backups (restic's source and dumps, already copies).
  notByDefault = [
    "@nix"
    "@log"
    "@cache"
    "@containers"
    "@backups"
    "@snapshots"
    "@snapshot-copies"
    "@old_roots"
    "@swap"
  ];
  defaultSubvolumes = lib.attrNames (
    lib.filterAttrs (
      n: sv:
      sv.mountpoint != null
      && !(builtins.elem n notByDefault)
      # An impermanent root is emptied at every boot: nothing to keep.
      && !(sv.mountpoint == "/" && top.impermanentRoot)
    ) L.enabledSubvolumes
  );

  # The top level (subvolid 5) of each disk's filesystem is mounted here;
  # btrbk's `volume`, with `snapshot_dir = @snapshots` inside it.
  topMount = disk: "${cfg.topLevelMountBase}/${disk}";
  diskOf = n: L.enabledSubvolumes.${n}.disk or null;
  # (A subvolume on an unknown disk is storage.btrfs's assertion.)
  disks = lib.unique (lib.filter (d: d != null && top.disks ? ${d}) (map diskOf cfg.subvolumes));

  policy =
    r:
    let
      part = n: unit: lib.optionalString (n > 0) "${toString n}${unit}";
      s = lib.concatStringsSep " " (
        lib.filter (x: x != "") [
          (part r.hourly "h")
          (part r.daily "d")
          (part r.weekly "w")
          (part r.monthly "m")
          (part r.yearly "y")
        ]
      );
    in
    if s == "" then "no" else s;

  tgt = if cfg.copies.enable then cfg.copies else null;
  copyPath = "${topMount tgt.disk}/${tgt.subvolume}";

  settings = {
    timestamp_format = "long";
    snapshot_preserve_min = cfg.retention.min;
    snapshot_preserve = policy cfg.retention;
    preserve_hour_of_day = toString cfg.retention.hourOfDay;
    preserve_day_of_week = cfg.retention.dayOfWeek;
    volume = lib.genAttrs (map topMount disks) (
      vol:
      {
        snapshot_dir = cfg.snapshotSubvolume;
        subvolume = lib.genAttrs (lib.filter (n: topMount (diskOf n) == vol) cfg.subvolumes) (_: { });
      }
      // lib.optionalAttrs (tgt != null) {
        target.${copyPath} = {
          target_preserve_min = cfg.retention.min;
          target_preserve = policy cfg.retention;
        };
      }
    );
  };

  # Databases to quiesce before each snapshot, when their data is snapshotted.
  redisServers = lib.filter (s: s.enable && s.unixSocket != null) (
    lib.attrValues (config.services.redis.servers or { })
  );
  pg = config.services.postgresql;
  pgPort = toString (pg.settings.port or 5432);
  quiesceArgs =
    lib.concatMap (
      s:
      [
        "--redis"
        s.unixSocket
      ]
      ++ lib.optionals (s.requirePassFile != null) [
        "--redis-password-file"
        s.requirePassFile
      ]
    ) redisServers
    ++ lib.optionals pg.enable [
      "--postgresql"
      "/run/postgresql"
      "--pg-port"
      pgPort
      "--pg-user"
      pg.superUser
    ]
    ++ [
      "--timeout"
      (toString cfg.quiesce.timeout)
    ];
  quiesceNeeded = cfg.quiesce.enable && (redisServers != [ ] || pg.enable);
  quiesce = pkgs.writeShellApplication {
    name = "storage-quiesce";
    runtimeInputs =
      [
        pkgs.coreutils
        pkgs.util-linux # runuser
      ]
      ++ lib.optional (redisServers != [ ]) pkgs.redis
      ++ lib.optional pg.enable pg.package;
    text = builtins.readFile ./jobs/quiesce.sh;
  };

  # The record of each run (./jobs/snapshot-report.sh), for storage-status.
  stateDir = "/var/lib/storage";
  report = pkgs.writeShellApplication {
    name = "storage-snapshot-report";
    runtimeInputs = [ pkgs.coreutils pkgs.findutils pkgs.jq ];
    text = builtins.readFile ./jobs/snapshot-report.sh;
  };
  # The timer's period, for the report (a snapshot is stale after 2 x it):
  # hourly, daily, and *:0/N (every N minutes) are recognised.
  intervalOf =
    s:
    let
      every = builtins.match "[*]:0?0/([0-9]+)(:00)?" s;
    in
    if lib.elem s [ "hourly" "*:00" "*:00:00" "*-*-* *:00:00" ] then 3600
    else if lib.elem s [ "daily" "*-*-* 00:00:00" ] then 86400
    else if every != null then 60 * lib.toInt (lib.head every)
    else null;
  reportLine = lib.escapeShellArgs (
    [
      "${report}/bin/storage-snapshot-report"
      "--result" "${stateDir}/snapshots.json"
      "--interval" (toString cfg.intervalSeconds)
      "--preserve" (policy cfg.retention)
      "--preserve-min" cfg.retention.min
      "--hour-of-day" (toString cfg.retention.hourOfDay)
    ]
    ++ lib.concatMap (d: [ "--dir" "${topMount d}/${cfg.snapshotSubvolume}" ]) disks
    ++ cfg.subvolumes
  );

  # A database's data directory should be on a snapshotted subvolume.
  snapshotted = map (n: L.enabledSubvolumes.${n}.mountpoint) (
    lib.filter (n: L.enabledSubvolumes ? ${n}) cfg.subvolumes
  );
  covered = path: lib.any (mp: mp == "/" || path == mp || lib.hasPrefix "${mp}/" path) snapshotted;
  uncoveredDbs =
    lib.optional (pg.enable && !covered pg.dataDir) "PostgreSQL (${pg.dataDir})"
    ++ lib.optional (
      redisServers != [ ] && !covered "/var/lib/redis"
    ) "Redis (/var/lib/redis*)";

  retentionType = types.submodule {
    options = {
      hourly = mkOption {
        type = types.ints.unsigned;
        default = 0;
        description = "Keep the first snapshot of each hour for this many hours back (btrbk `NNh`); 0: none.";
      };
      daily = mkOption {
        type = types.ints.unsigned;
        default = 7;
        description = ''
          Keep the first snapshot of each day for this many days back (btrbk
          `NNd`: today's and that of each of the N days before it).
        '';
      };
      weekly = mkOption {
        type = types.ints.unsigned;
        default = 4;
        description = "Keep the first daily snapshot of each week (weeks start on `dayOfWeek`) for this many weeks back (btrbk `NNw`).";
      };
      monthly = mkOption {
        type = types.ints.unsigned;
        default = 12;
        description = "Keep the first weekly snapshot of each month for this many months back (btrbk `NNm`).";
      };
      yearly = mkOption {
        type = types.ints.unsigned;
        default = 0;
        description = "Keep the first monthly snapshot of each year for this many years back (btrbk `NNy`); 0: none.";
      };
      min = mkOption {
        type = types.strMatching "latest|[0-9]+[hdwmy]";
        default = "latest";
        example = "2h";
        description = ''
          btrbk's `snapshot_preserve_min`: keep *every* snapshot younger
          than this (`2h`), or only the `latest`. Never `all` (btrbk's
          default), under which the policy above does nothing.
        '';
      };
      hourOfDay = mkOption {
        type = types.ints.between 0 23;
        default = 0;
        description = "btrbk's `preserve_hour_of_day`: the hour at which a day starts for daily/weekly/monthly.";
      };
      dayOfWeek = mkOption {
        type = types.enum [
          "monday"
          "tuesday"
          "wednesday"
          "thursday"
          "friday"
          "saturday"
          "sunday"
        ];
        default = "sunday";
        description = "btrbk's `preserve_day_of_week`: the day weekly snapshots are taken from.";
      };
    };
  };
in
{
  options.storage.snapshots = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Read-only snapshots of `subvolumes` into `@snapshots` on the same
        filesystem, by btrbk (`btrbk-storage.timer`), with the retention
        below. On by default with `storage.enable`.
      '';
    };

    subvolumes = mkOption {
      type = types.listOf types.str;
      default = defaultSubvolumes;
      defaultText = literalExpression ''
        every enabled, mounted subvolume except @nix, @log, @cache, @containers,
        @backups, @snapshots, @snapshot-copies, @old_roots, @swap, and except
        @root on an impermanent root'';
      example = [
        "@persist"
        "@home"
        "@postgresql"
      ];
      description = ''
        The subvolumes to snapshot (names from `storage.btrfs.subvolumes`).
        Each disk holding one needs its own `snapshotSubvolume` (Btrfs
        snapshots stay on their filesystem).
      '';
    };

    schedule = mkOption {
      type = types.str;
      default = "hourly";
      example = "*:0/15";
      description = ''
        systemd calendar expression of `btrbk-storage.timer`: how often
        snapshots are taken (the recovery point objective of local
        snapshots). Profile defaults: hetzner `*:0/15`, the others `hourly`.
      '';
    };

    intervalSeconds = mkOption {
      type = types.nullOr types.ints.positive;
      default = intervalOf cfg.schedule;
      defaultText = lib.literalMD "from `schedule`: `hourly` 3600, `daily` 86400, `*:0/N` N minutes";
      example = 1800;
      description = ''
        The period of `schedule` in seconds. The run record
        (`/var/lib/storage/snapshots.json`, read by `storage-status`) carries
        it: a subvolume whose last snapshot is older than twice this is
        stale. Must be set for a schedule not of the forms above.
      '';
    };

    retention = mkOption {
      type = retentionType;
      default = { };
      description = ''
        How many snapshots btrbk keeps (`snapshot_preserve` and
        `snapshot_preserve_min`). Profile defaults: laptops 24 hourly,
        7 daily, 4 weekly, 12 monthly; servers 30 daily, 12 weekly,
        12 monthly, with 24 hourly (hetzner: 48 hourly and every
        15-minute snapshot of the last 2 hours).
      '';
    };

    snapshotSubvolume = mkOption {
      type = types.str;
      default = "@snapshots";
      description = "The subvolume, on each snapshotted disk, that receives the snapshots (btrbk's `snapshot_dir`).";
    };

    topLevelMountBase = mkOption {
      type = types.strMatching "/[^[:space:]]*[^/]";
      default = "/mnt/btrfs";
      description = ''
        The top level (subvolid 5) of each Btrfs filesystem holding
        snapshotted subvolumes is mounted at `<this>/<disk>` (e.g.
        `/mnt/btrfs/main`); btrbk's `volume`. Snapshots are then under
        `/mnt/btrfs/<disk>/@snapshots/<subvolume>.<YYYYMMDD>T<HHMM>`.
      '';
    };

    copies = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Also send every snapshot (incrementally, btrfs send/receive) to
          the `subvolume` on another disk, with the same retention, so that
          one dead disk loses nothing (btrbk `target`). Profile default:
          on for zephyrus (its secondary NVMe).
        '';
      };
      disk = mkOption {
        type = types.str;
        default = "secondary";
        description = "The `storage.disks` entry whose filesystem receives the copies.";
      };
      subvolume = mkOption {
        type = types.str;
        default = "@snapshot-copies";
        description = "Subvolume on that disk receiving them.";
      };
    };

    quiesce = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Before each snapshot, make enabled databases consistent on disk:
          Redis `BGSAVE` (waiting until it finished and succeeded) for every
          `services.redis.servers` entry with a socket, PostgreSQL
          `CHECKPOINT` with `services.postgresql.enable`
          (`storage-quiesce`, a root `ExecStartPre` of
          `btrbk-storage.service`).
        '';
      };
      mustSucceed = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether a failing quiesce step (Redis down, BGSAVE failed, timeout)
          stops the snapshot run. By default the failure is logged (one line
          in the journal of `btrbk-storage.service`) and the snapshots are
          still taken: they are crash-consistent, holding Redis' previous
          RDB file and PostgreSQL's data directory with its WAL.
        '';
      };
      timeout = mkOption {
        type = types.ints.positive;
        default = 120;
        description = "Seconds to wait for each database before giving up.";
      };
    };

    package = mkOption {
      type = types.package;
      readOnly = true;
      default = quiesce;
      defaultText = literalExpression "storage-quiesce (./jobs/quiesce.sh)";
      description = "The quiesce program (read-only; for tests and manual runs).";
      internal = true;
    };
    quiesceArguments = mkOption {
      type = types.listOf types.str;
      readOnly = true;
      default = quiesceArgs;
      description = "Its arguments for this host's databases (read-only; the offsite backup quiesces with them too).";
      internal = true;
    };
  };

  config = mkIf (top.enable && cfg.enable && cfg.subvolumes != [ ]) {
    assertions =
      map (n: {
        assertion = L.enabledSubvolumes ? ${n};
        message = ''storage.snapshots.subvolumes: "${n}" is not an enabled subvolume of storage.btrfs.subvolumes.'';
      }) cfg.subvolumes
      ++ map (d: {
        assertion = (L.enabledSubvolumes.${cfg.snapshotSubvolume} or { disk = null; }).disk == d;
        message = ''storage.snapshots: disk "${d}" holds snapshotted subvolumes but no "${cfg.snapshotSubvolume}" subvolume (snapshots stay on their filesystem); add storage.btrfs.subvolumes."${cfg.snapshotSubvolume}" = { disk = "${d}"; }.'';
      }) disks
      ++ [
        {
          assertion = cfg.intervalSeconds != null;
          message = ''storage.snapshots.intervalSeconds: cannot tell the period of schedule "${cfg.schedule}"; set it (seconds between snapshot runs).'';
        }
      ]
      ++ lib.optional (tgt != null) {
        assertion = (L.enabledSubvolumes.${tgt.subvolume} or { disk = null; }).disk == tgt.disk;
        message = ''storage.snapshots.copies: "${tgt.subvolume}" must be an enabled subvolume on disk "${tgt.disk}".'';
      }
      ;

    warnings = lib.optional (quiesceNeeded && uncoveredDbs != [ ]) ''
      storage.snapshots: the data of ${lib.concatStringsSep " and " uncoveredDbs} is on no snapshotted subvolume (storage.snapshots.subvolumes); its snapshots will not contain it.'';

    fileSystems = lib.listToAttrs (
      map (
        d:
        lib.nameValuePair (topMount d) {
          device = L.btrfsDevice d;
          fsType = "btrfs";
          options = [
            "subvolid=5"
            "noatime"
            "x-gvfs-hide"
          ]
          ++ lib.optional (top.disks.${d}.nofail or false) "nofail";
        }
      ) (lib.unique (disks ++ lib.optional (tgt != null) tgt.disk))
    );

    # The layout creates @snapshots; on a filesystem made before it, a
    # plain directory does too (btrbk does not create its snapshot_dir).
    systemd.tmpfiles.rules =
      map (d: "d ${topMount d}/${cfg.snapshotSubvolume} 0755 root root -") disks
      # The run records (storage.backup declares the directory when enabled).
      ++ lib.optional (!top.backup.enable) "d ${stateDir} 0700 root root -";

    services.btrbk.instances.storage = {
      onCalendar = cfg.schedule;
      snapshotOnly = false;
      inherit settings;
    };

    systemd.services.btrbk-storage = {
      unitConfig.RequiresMountsFor = map topMount disks;
      serviceConfig.ExecStartPre = lib.optional quiesceNeeded (
        # `+`: as root (btrbk itself runs as user btrbk with sudo);
        # `-`: a failure is logged, the snapshots are still taken.
        "${lib.optionalString (!cfg.quiesce.mustSucceed) "-"}+${quiesce}/bin/storage-quiesce ${lib.escapeShellArgs quiesceArgs}"
      );
      # After every run, failed ones too: systemd passes $SERVICE_RESULT and
      # $EXIT_STATUS. `+`: as root (the state directory is root's); `-`: a
      # failing report never turns the snapshot run into a failure.
      serviceConfig.ExecStopPost = [ "-+${reportLine}" ];
    };
    # The run records survive an impermanent root (storage.backup declares
    # the same directory when it is enabled).
    storage.impermanence.persistence.directories = lib.mkIf (top.impermanentRoot && !top.backup.enable) [ stateDir ];
    systemd.timers.btrbk-storage.timerConfig.AccuracySec = lib.mkForce "1min";
  };
}
