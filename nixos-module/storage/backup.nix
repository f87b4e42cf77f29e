# storage.backup.*: nightly offsite backups of the profile's subvolumes to
# Backblaze B2 (S3 API) with restic, through nixpkgs'
# services.restic.backups.storage. The source is a read-only snapshot at a
# fixed path (./jobs/backup-source.sh, the unit's backupPrepareCommand), so
# every run after the first is incremental; ./jobs/restic-backup.sh runs
# backup, stale-lock removal and forget --prune with one-line errors;
# ./jobs/restic-check.sh is the weekly partial read-back;
# ./jobs/restore-drill.sh (storage-restore-drill.timer) restores the newest
# snapshot and proves it: sampled files byte for byte, PostgreSQL recovered
# and pg_amcheck'd with the row count recorded at backup time, Redis' RDB
# checked and loaded. Each writes its result to /var/lib/storage
# (backup.json, backup-check.json, restore-drill.json) for storage-status
# (docs/reference/monitoring.md). Reference:
# docs/reference/nixos-options.md, docs/how-to/backups.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types mkIf;
  top = config.storage;
  cfg = config.storage.backup;
  b2 = cfg.b2;
  L = import ./lib.nix { inherit lib; } top;
  name = "storage";

  # Per-profile defaults (applied with mkDefault). Off-peak start times are
  # local time of the host; laptops catch up after sleep (Persistent=true).
  # Keep rules mirror the local snapshot policy: laptops 7/4/12, servers
  # 30/12/12. expectedDataGB: the repository size expected after compression
  # and with the history kept (a planning figure, checked against the budget).
  profileDefaults = {
    hetzner = { schedule = "*-*-* 02:30:00"; drill = "Sun 06:00"; keep = { daily = 30; weekly = 12; monthly = 12; }; expectedDataGB = 200; };
    contabo = { drill = "*-*-01 06:00:00"; schedule = "*-*-* 03:00:00"; keep = { daily = 30; weekly = 12; monthly = 12; }; expectedDataGB = 150; };
    ovh = { drill = "*-*-01 06:00:00"; schedule = "*-*-* 03:30:00"; keep = { daily = 30; weekly = 12; monthly = 12; }; expectedDataGB = 60; };
    zephyrus = { drill = "*-*-01 06:00:00"; schedule = "*-*-* 02:00:00"; keep = { daily = 7; weekly = 4; monthly = 12; }; expectedDataGB = 300; };
    yoga = { drill = "*-*-01 06:00:00"; schedule = "*-*-* 02:00:00"; keep = { daily = 7; weekly = 4; monthly = 12; }; expectedDataGB = 100; };
  };
  defaults = profileDefaults.${top.activeProfile} or profileDefaults.hetzner;

  databaseSubvolumes = [ "@postgresql" "@redis" "@backups" ];
  containerSubvolumes = [ "@containers" ];
  # Never backed up: rebuilt from the configuration, logs, snapshot stores.
  neverSubvolumes = [ "@root" "@nix" "@log" "@snapshots" "@old_roots" "@backup-source" ];
  enabledNames = lib.attrNames L.enabledSubvolumes;
  defaultSubvolumes = lib.filter (
    n: !(lib.elem n (neverSubvolumes ++ databaseSubvolumes ++ containerSubvolumes)) && L.enabledSubvolumes.${n}.mountpoint != null
  ) enabledNames;
  selected = lib.unique (
    cfg.subvolumes
    ++ lib.optionals cfg.includeDatabases (lib.filter (n: lib.elem n enabledNames) databaseSubvolumes)
    ++ lib.optionals cfg.includeContainers (lib.filter (n: lib.elem n enabledNames) containerSubvolumes)
  );
  # disk -> selected subvolumes on it
  byDisk = lib.filterAttrs (_: svs: svs != [ ]) (
    lib.genAttrs L.btrfsDisks (d: lib.filter (n: (L.enabledSubvolumes.${n} or { disk = null; }).disk == d) selected)
  );
  mountDir = disk: "/run/storage-backup/${disk}";
  snapshotPaths = lib.concatLists (lib.mapAttrsToList (d: map (sv: "${mountDir d}/@backup-source/${sv}")) byDisk);
  # The run's record (quiesce's marker, the file manifest) is backed up
  # with the data, so the drill reads the record of the snapshot it restores.
  stateDir = "/var/lib/storage";
  recordDir = "${stateDir}/backup-record";
  sourcePaths = snapshotPaths ++ [ recordDir ];
  sourceOf = sv: lib.findFirst (p: lib.hasSuffix "/@backup-source/${sv}" p) null snapshotPaths;
  pgSource = if config.services.postgresql.enable then sourceOf "@postgresql" else null;
  redisServers = lib.filter (s: s.enable) (lib.attrValues (config.services.redis.servers or { }));
  redisSource = if redisServers != [ ] then sourceOf "@redis" else null;
  quiesceLine = lib.escapeShellArgs (
    [ "${top.snapshots.package}/bin/storage-quiesce" ]
    ++ top.snapshots.quiesceArguments
    ++ [ "--record" "${recordDir}/record.json" "--best-effort" ]
  );
  # includeDatabases: a pg_dump -Fc of each database into @backups (before
  # its snapshot), so one database can be restored on its own.
  pg = config.services.postgresql;
  backupsMount = (L.enabledSubvolumes."@backups" or { mountpoint = null; }).mountpoint;
  dumpDir = "${backupsMount}/postgresql";
  dumps = cfg.includeDatabases && pg.enable && backupsMount != null && lib.elem "@backups" selected;
  dumpLine = lib.escapeShellArgs [
    "${dumper}/bin/storage-db-dump"
    "--postgresql" "/run/postgresql"
    "--pg-port" (toString (pg.settings.port or 5432))
    "--pg-user" pg.superUser
    "--out" dumpDir
    "--best-effort"
  ];
  manifestLine = lib.escapeShellArgs (
    [ "${manifest}/bin/storage-backup-manifest" "${recordDir}/manifest.tsv" (toString cfg.drill.sampleFiles) ] ++ snapshotPaths
  );
  sourceCommands =
    action:
    lib.concatStringsSep "\n" (
      lib.mapAttrsToList (
        d: svs: lib.escapeShellArgs ([ "${source}/bin/storage-backup-source" action (L.btrfsDevice d) (mountDir d) ] ++ svs)
      ) byDisk
    );

  endpoint = if b2.endpoint != null then b2.endpoint else "https://s3.${toString b2.region}.backblazeb2.com";
  repository = "s3:${lib.removeSuffix "/" endpoint}/${toString b2.bucket}/${top.hostname}";
  pruneOpts = [
    "--keep-daily ${toString cfg.retention.daily}"
    "--keep-weekly ${toString cfg.retention.weekly}"
    "--keep-monthly ${toString cfg.retention.monthly}"
  ];
  costPerMonth = cfg.expectedDataGB / 1000.0 * b2.pricePerTBMonth;
  # 1.5 -> "1.50" (USD, rounded to cents).
  usd =
    x:
    let
      cents = builtins.floor (x * 100 + 0.5);
      c = lib.mod cents 100;
    in
    "${toString (cents / 100)}.${lib.optionalString (c < 10) "0"}${toString c}";

  restic = pkgs.restic;
  source = pkgs.writeShellApplication {
    name = "storage-backup-source";
    runtimeInputs = [ pkgs.btrfs-progs pkgs.util-linux pkgs.coreutils ];
    text = builtins.readFile ./jobs/backup-source.sh;
  };
  runner = pkgs.writeShellApplication {
    name = "storage-backup";
    runtimeInputs = [ restic pkgs.jq pkgs.gawk pkgs.gnugrep pkgs.gnused pkgs.coreutils pkgs.hostname ];
    text = builtins.readFile ./jobs/restic-backup.sh;
  };
  dumper = pkgs.writeShellApplication {
    name = "storage-db-dump";
    runtimeInputs = [ pg.package pkgs.jq pkgs.coreutils pkgs.util-linux pkgs.gnugrep pkgs.gnused ];
    text = builtins.readFile ./jobs/db-dump.sh;
  };
  manifest = pkgs.writeShellApplication {
    name = "storage-backup-manifest";
    runtimeInputs = [ pkgs.coreutils pkgs.findutils ];
    text = builtins.readFile ./jobs/backup-manifest.sh;
  };
  drill = pkgs.writeShellApplication {
    name = "storage-restore-drill";
    runtimeInputs =
      [ restic pkgs.jq pkgs.coreutils pkgs.findutils pkgs.gawk pkgs.gnugrep pkgs.gnused pkgs.util-linux pkgs.hostname ]
      ++ lib.optional (pgSource != null || dumps) config.services.postgresql.package
      ++ lib.optional (redisSource != null) config.services.redis.package;
    text = builtins.readFile ./jobs/restore-drill.sh;
  };
  checker = pkgs.writeShellApplication {
    name = "storage-backup-check";
    runtimeInputs = [ restic pkgs.jq pkgs.gnugrep pkgs.gnused pkgs.coreutils ];
    text = builtins.readFile ./jobs/restic-check.sh;
  };

  # A oneshot on the repository with the backup unit's variables, secrets and
  # cache (the weekly check, the drill), after the nightly backup.
  repositoryJob = description: serviceConfig: {
    inherit description;
    wants = [ "network-online.target" ];
    after = [ "network-online.target" "restic-backups-${name}.service" ];
    environment = lib.filterAttrs (n: v: lib.hasPrefix "RESTIC_" n && v != null) config.systemd.services."restic-backups-${name}".environment;
    serviceConfig = {
      Type = "oneshot";
      EnvironmentFile = toString b2.credentialsFile;
      CacheDirectory = "restic-backups-${name}";
      CacheDirectoryMode = "0700";
      Nice = 10;
    } // serviceConfig;
  };

  # A secret option's value: an absolute path string outside the Nix store
  # (L.secretProblem says what is wrong with it).
  secretType = types.nullOr (types.either types.str types.path);
  secretAssertion = opt: v: example: {
    assertion = L.secretProblem v == null;
    message = ''storage.backup.b2.${opt} ${toString (L.secretProblem v)}. Set storage.backup.b2.${opt} to the absolute path of a root-only file written at run time, as a string, e.g. storage.backup.b2.${opt} = "${example}"; (OpNix/1Password or sops-nix write such files).'';
  };
  secretOption = what: example: mkOption {
    type = secretType;
    default = null;
    example = example;
    description = ''
      Absolute path, as a string, of a root-only file holding ${what}. Read
      at run time, never copied into the Nix store: a path literal or a
      `/nix/store` path fails an assertion.
    '';
  };
in
{
  options.storage.backup = {
    enable = lib.mkEnableOption "nightly offsite backups of the profile's subvolumes to Backblaze B2 with restic";

    subvolumes = mkOption {
      type = types.listOf types.str;
      default = defaultSubvolumes;
      defaultText = lib.literalMD "every enabled, mounted subvolume except `@root`, `@nix`, `@log`, the snapshot stores, databases and containers (`@persist`, `@home`, …)";
      example = [ "@persist" "@home" ];
      description = "Subvolumes (names in `storage.btrfs.subvolumes`) backed up, each from a read-only snapshot.";
    };
    includeDatabases = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Also back up `@postgresql`, `@redis` and `@backups` where the profile
        has them. Each is one subvolume, so its snapshot is crash-consistent
        (and quiesced first: Redis `BGSAVE`, PostgreSQL `CHECKPOINT`). With
        PostgreSQL enabled, each run first writes a `pg_dump -Fc` of every
        database to `<@backups mountpoint>/postgresql/<db>.dump` (with a
        `manifest.json`), so a single database can be restored with
        `pg_restore`.
      '';
    };
    includeContainers = mkOption {
      type = types.bool;
      default = false;
      description = "Also back up `@containers` (Podman storage; usually rebuilt from images).";
    };
    schedule = mkOption {
      type = types.str;
      default = defaults.schedule;
      defaultText = lib.literalMD "per profile: hetzner 02:30, contabo 03:00, ovh 03:30, laptops 02:00";
      description = "`OnCalendar=` of the nightly backup (off-peak; `Persistent=true` runs a missed one at the next boot).";
    };
    timeout = mkOption {
      type = types.strMatching "[0-9]+[smhd]?";
      default = "6h";
      example = "90m";
      description = ''
        Upper bound of one backup run (a `timeout(1)` duration). restic keeps
        retrying an unreachable endpoint for a long time; past this bound the
        run fails with one line saying so, and the next night tries again.
      '';
    };
    retention = lib.genAttrs [ "daily" "weekly" "monthly" ] (k: mkOption {
      type = types.ints.unsigned;
      default = defaults.keep.${k};
      defaultText = lib.literalMD "servers 30/12/12, laptops 7/4/12 (daily/weekly/monthly)";
      description = "`restic forget --prune --keep-${k}` after each backup.";
    });
    check = {
      schedule = mkOption {
        type = types.str;
        default = "Sun 05:00";
        description = "`OnCalendar=` of the weekly `restic check` (`storage-backup-check.timer`).";
      };
      parts = mkOption {
        type = types.ints.positive;
        default = 12;
        description = "Each weekly check reads back one part in this many of the pack files (`--read-data-subset=K/parts`, K from the week number): all data every `parts` weeks.";
      };
    };
    drill = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          The restore drill (`storage-restore-drill.timer`): restore the newest
          offsite snapshot into scratch space and prove it — a sample of files
          byte for byte against checksums taken at backup time; PostgreSQL
          started on the restored data directory (own socket, no network),
          recovered, checked with `pg_amcheck`, and its marker row count
          compared with the one recorded at backup time; every Redis RDB
          checked with `redis-check-rdb` and loaded. The result is written to
          `/var/lib/storage/restore-drill.json`.
        '';
      };
      schedule = mkOption {
        type = types.str;
        default = defaults.drill;
        defaultText = lib.literalMD "hetzner weekly (`Sun 06:00`), the others monthly (`*-*-01 06:00:00`)";
        description = "`OnCalendar=` of the drill.";
      };
      sampleFiles = mkOption {
        type = types.ints.unsigned;
        default = 32;
        description = "Files (of at most 64 MiB) sampled per subvolume at each backup, whose sha256 the drill compares.";
      };
      scratchDirectory = mkOption {
        type = types.strMatching "/[^[:space:]]*";
        default = "/var/tmp";
        description = "Where the drill restores (it needs room for the database subvolumes; removed afterwards).";
      };
      timeout = mkOption {
        type = types.strMatching "[0-9]+[smhd]?";
        default = "6h";
        description = "Upper bound of each restore step (a `timeout(1)` duration).";
      };
    };
    expectedDataGB = mkOption {
      type = types.ints.unsigned;
      default = defaults.expectedDataGB;
      defaultText = lib.literalMD "hetzner 200, contabo 150, ovh 60, zephyrus 300, yoga 100";
      description = "Expected repository size in GB (compressed, with the history kept), for the cost estimate.";
    };
    b2 = {
      bucket = mkOption {
        type = types.nullOr (types.strMatching "[a-z0-9][a-z0-9-]{4,61}[a-z0-9]");
        default = null;
        example = "acme-backups";
        description = "B2 bucket (required). Each host writes its own repository `<bucket>/<storage.hostname>`.";
      };
      region = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "eu-central-003";
        description = "B2 region of the bucket: the endpoint is `https://s3.<region>.backblazeb2.com`.";
      };
      endpoint = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://s3.eu-central-003.backblazeb2.com";
        description = "S3 endpoint URL; overrides the one `region` implies.";
      };
      credentialsFile = secretOption "`AWS_ACCESS_KEY_ID=…` and `AWS_SECRET_ACCESS_KEY=…` (a B2 application key; systemd `EnvironmentFile=` format)" "/run/secrets/b2-credentials";
      passwordFile = secretOption "the restic repository password" "/run/secrets/restic-password";
      pricePerTBMonth = mkOption {
        type = types.number;
        default = 6.0;
        description = "B2 storage price in USD per TB and month: $6, Backblaze's published price as of 2024 (not re-checked online when this was written).";
      };
      monthlyBudget = mkOption {
        type = types.number;
        default = 2.0;
        description = "This host's share of the monthly B2 budget in USD ($10 for five hosts). A warning at evaluation time when `expectedDataGB` would cost more.";
      };
    };
    repository = mkOption {
      type = types.str;
      readOnly = true;
      default = repository;
      defaultText = lib.literalExpression ''"s3:''${endpoint}/''${b2.bucket}/''${storage.hostname}"'';
      description = "The restic repository (read-only).";
    };
    paths = mkOption {
      type = types.listOf types.str;
      readOnly = true;
      default = sourcePaths;
      defaultText = lib.literalMD "`/run/storage-backup/<disk>/@backup-source/<subvolume>` per selected subvolume, and `/var/lib/storage/backup-record`";
      description = "What restic reads: the fixed paths of the read-only snapshots (read-only).";
    };
  };

  config = mkIf (top.enable && cfg.enable) {
    assertions = [
      {
        assertion = b2.bucket != null;
        message = "storage.backup.b2.bucket must be set when storage.backup.enable is true.";
      }
      {
        assertion = b2.region != null || b2.endpoint != null;
        message = "storage.backup.b2: set region (e.g. \"eu-central-003\") or endpoint.";
      }
      (secretAssertion "credentialsFile" b2.credentialsFile "/run/secrets/b2-credentials")
      (secretAssertion "passwordFile" b2.passwordFile "/run/secrets/restic-password")
      {
        assertion = lib.all (n: lib.elem n enabledNames) selected;
        message = "storage.backup.subvolumes names subvolumes this host does not have: ${toString (lib.filter (n: !(lib.elem n enabledNames)) selected)}.";
      }
      {
        assertion = selected != [ ];
        message = "storage.backup: nothing selected (storage.backup.subvolumes is empty).";
      }
    ];
    warnings = lib.optional (costPerMonth > b2.monthlyBudget) (
      "storage.backup: ${toString cfg.expectedDataGB} GB expected on B2 cost about \$${usd costPerMonth} a month"
      + " at \$${usd b2.pricePerTBMonth}/TB, over this host's budget storage.backup.b2.monthlyBudget = \$${usd b2.monthlyBudget}."
    );

    services.restic.backups.${name} = {
      inherit repository pruneOpts;
      package = restic;
      environmentFile = toString b2.credentialsFile;
      passwordFile = toString b2.passwordFile;
      paths = sourcePaths;
      initialize = false; # storage-backup creates it, with a one-line error if it cannot
      # Quiesce (best effort: a database that is down must not stop the
      # backup of everything else; its failure is logged and recorded), the
      # read-only snapshots, then the checksums of a sample of their files.
      backupPrepareCommand = lib.concatStringsSep "\n" (
        [ quiesceLine ] ++ lib.optional dumps dumpLine ++ [ (sourceCommands "prepare") manifestLine ]
      );
      backupCleanupCommand = sourceCommands "release";
      runCheck = false; # weekly, in storage-backup-check.service
      timerConfig = {
        OnCalendar = cfg.schedule;
        Persistent = true;
        RandomizedDelaySec = "15min";
      };
    };
    # Our runner instead of nixpkgs' three restic commands: the same backup
    # of `paths`, unlock and forget --prune with pruneOpts, plus one-line
    # errors and the cost line (./jobs/restic-backup.sh).
    systemd.services."restic-backups-${name}".serviceConfig.ExecStart = lib.mkForce [
      "${runner}/bin/storage-backup --host ${top.hostname} --price-per-tb ${usd b2.pricePerTBMonth} --timeout ${cfg.timeout} --result ${stateDir}/backup.json ${lib.escapeShellArgs sourcePaths} -- ${lib.concatStringsSep " " pruneOpts}"
    ];

    # Results (the drill's, and the record backed up with each run) survive
    # the blank root of an impermanent host.
    storage.impermanence.persistence.directories = lib.mkIf top.impermanentRoot [ stateDir ];
    systemd.tmpfiles.rules = [ "d ${stateDir} 0700 root root -" ];

    systemd.services.storage-restore-drill = mkIf cfg.drill.enable (
      repositoryJob "Restore the newest offsite backup into scratch space and prove it" {
        IOSchedulingClass = "idle";
        ExecStart = lib.escapeShellArgs (
          [
            "${drill}/bin/storage-restore-drill"
            "--host" top.hostname
            "--record-dir" recordDir
            "--result" "${stateDir}/restore-drill.json"
            "--scratch" cfg.drill.scratchDirectory
            "--timeout" cfg.drill.timeout
          ]
          ++ lib.optionals (pgSource != null) [ "--postgresql" pgSource ]
          ++ lib.optionals (redisSource != null) [ "--redis" redisSource ]
          ++ lib.optionals (dumps && sourceOf "@backups" != null) [ "--dumps" "${sourceOf "@backups"}/postgresql" ]
        );
      }
    );
    systemd.timers.storage-restore-drill = mkIf cfg.drill.enable {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.drill.schedule;
        Persistent = true;
        RandomizedDelaySec = "1h";
      };
    };

    systemd.services.storage-backup-check = repositoryJob "Read back part of the offsite restic repository" {
      PrivateTmp = true;
      ExecStart = "${checker}/bin/storage-backup-check --result ${stateDir}/backup-check.json ${toString cfg.check.parts}";
    };
    systemd.timers.storage-backup-check = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.check.schedule;
        Persistent = true;
        RandomizedDelaySec = "1h";
      };
    };
  };
}
