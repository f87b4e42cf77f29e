# Eval tests of storage.backup (nixos-module/storage/backup.nix) against real
# NixOS: the restic unit nixpkgs renders for a server profile (repository,
# environment and password files, timer, prune options, our runner and the
# snapshot-source commands), the weekly check, and the secrets assertion and
# budget warning. Run by ./run.
{ nixos, disko }:
let
  inherit (nixos) lib failedAssertions hostWith;
  host = backup: hostWith "hetzner" [ { networking.hostName = "hetzner"; storage.backup = backup; } ];
  b2 = {
    bucket = "acme-backups";
    region = "eu-central-003";
    credentialsFile = "/run/secrets/b2-credentials";
    passwordFile = "/run/secrets/restic-password";
  };
  # Store paths of our programs, without the hash.
  # Lines are joined with " | ".
  unstore = s: lib.concatStringsSep " " (map (w: if lib.hasPrefix "/nix/store/" w then "<" + lib.concatStringsSep "-" (lib.drop 1 (lib.splitString "-" (baseNameOf (dirOf (dirOf w))))) + ">/" + baseNameOf w else w) (lib.splitString " " (builtins.replaceStrings [ "\n" ] [ " | " ] s)));
  mnt = "/run/storage-backup/main/@backup-source";
  ours = c: builtins.filter (m: lib.hasPrefix "storage" m) (failedAssertions c);
in
{
  testBackupHetznerUnit = {
    expr =
      let
        c = host { enable = true; inherit b2; };
        s = c.systemd.services.restic-backups-storage;
        chk = c.systemd.services.storage-backup-check;
      in
      {
        failed = ours c;
        warnings = c.warnings;
        env = lib.filterAttrs (n: v: n != "PATH" && v != null) s.environment;
        envFile = s.serviceConfig.EnvironmentFile;
        execStart = map unstore s.serviceConfig.ExecStart;
        prepare = unstore c.services.restic.backups.storage.backupPrepareCommand;
        cleanup = unstore c.services.restic.backups.storage.backupCleanupCommand;
        pruneOpts = c.services.restic.backups.storage.pruneOpts;
        timer = c.systemd.timers.restic-backups-storage.timerConfig;
        check = {
          env = chk.environment.RESTIC_REPOSITORY;
          envFile = chk.serviceConfig.EnvironmentFile;
          exec = unstore chk.serviceConfig.ExecStart;
          timer = c.systemd.timers.storage-backup-check.timerConfig.OnCalendar;
        };
      };
    expected = {
      failed = [ ];
      warnings = [ ];
      env = {
        RESTIC_CACHE_DIR = "/var/cache/restic-backups-storage";
        RESTIC_PASSWORD_FILE = "/run/secrets/restic-password";
        RESTIC_REPOSITORY = "s3:https://s3.eu-central-003.backblazeb2.com/acme-backups/hetzner";
      };
      envFile = "/run/secrets/b2-credentials";
      execStart = [
        "<storage-backup>/storage-backup --host hetzner --price-per-tb 6.00 --timeout 6h --result /var/lib/storage/backup.json ${mnt}/@caddy ${mnt}/@home ${mnt}/@persist ${mnt}/@postgresql ${mnt}/@redis ${mnt}/@backups /var/lib/storage/backup-record -- --keep-daily 30 --keep-weekly 12 --keep-monthly 12"
      ];
      prepare = lib.concatStringsSep " | " [
        "<storage-quiesce>/storage-quiesce --timeout 120 --record /var/lib/storage/backup-record/record.json --best-effort"
        "<storage-backup-source>/storage-backup-source prepare /dev/disk/by-partlabel/disk-main-root /run/storage-backup/main @caddy @home @persist @postgresql @redis @backups"
        "<storage-backup-manifest>/storage-backup-manifest /var/lib/storage/backup-record/manifest.tsv 32 ${mnt}/@caddy ${mnt}/@home ${mnt}/@persist ${mnt}/@postgresql ${mnt}/@redis ${mnt}/@backups"
      ];
      cleanup = "<storage-backup-source>/storage-backup-source release /dev/disk/by-partlabel/disk-main-root /run/storage-backup/main @caddy @home @persist @postgresql @redis @backups";
      pruneOpts = [ "--keep-daily 30" "--keep-weekly 12" "--keep-monthly 12" ];
      timer = {
        OnCalendar = "*-*-* 02:30:00";
        Persistent = true;
        RandomizedDelaySec = "15min";
      };
      check = {
        env = "s3:https://s3.eu-central-003.backblazeb2.com/acme-backups/hetzner";
        envFile = "/run/secrets/b2-credentials";
        exec = "<storage-backup-check>/storage-backup-check --result /var/lib/storage/backup-check.json 12";
        timer = "Sun 05:00";
      };
    };
  };

  # With PostgreSQL and Redis: the backup quiesces them with a marker, and
  # the drill restores and proves both; its result survives the blank root.
  testBackupDrillWithDatabases = {
    expr =
      let
        c = hostWith "hetzner" [
          {
            networking.hostName = "hetzner";
            services.postgresql.enable = true;
            services.redis.servers."".enable = true;
            storage.backup = { enable = true; inherit b2; };
          }
        ];
        d = c.systemd.services.storage-restore-drill;
      in
      {
        failed = ours c;
        quiesce = builtins.head (lib.splitString " | " (unstore c.services.restic.backups.storage.backupPrepareCommand));
        dump = builtins.elemAt (lib.splitString " | " (unstore c.services.restic.backups.storage.backupPrepareCommand)) 1;
        drill = unstore d.serviceConfig.ExecStart;
        env = d.environment.RESTIC_REPOSITORY;
        envFile = d.serviceConfig.EnvironmentFile;
        after = builtins.elem "restic-backups-storage.service" d.after;
        timer = c.systemd.timers.storage-restore-drill.timerConfig.OnCalendar;
        persisted = builtins.elem "/var/lib/storage" c.storage.impermanence.persistence.directories;
      };
    expected = {
      failed = [ ];
      quiesce = "<storage-quiesce>/storage-quiesce --redis /run/redis/redis.sock --postgresql /run/postgresql --pg-port 5432 --pg-user postgres --timeout 120 --record /var/lib/storage/backup-record/record.json --best-effort";
      dump = "<storage-db-dump>/storage-db-dump --postgresql /run/postgresql --pg-port 5432 --pg-user postgres --out /var/lib/backups/postgresql --best-effort";
      drill = "<storage-restore-drill>/storage-restore-drill --host hetzner --record-dir /var/lib/storage/backup-record --result /var/lib/storage/restore-drill.json --scratch /var/tmp --timeout 6h --postgresql ${mnt}/@postgresql --redis ${mnt}/@redis --dumps ${mnt}/@backups/postgresql";
      env = "s3:https://s3.eu-central-003.backblazeb2.com/acme-backups/hetzner";
      envFile = "/run/secrets/b2-credentials";
      after = true;
      timer = "Sun 06:00";
      persisted = true;
    };
  };

  testBackupSecretsAndBudget = {
    expr =
      let
        c = host {
          enable = true;
          expectedDataGB = 1000;
          b2 = b2 // {
            endpoint = "http://127.0.0.1:9000";
            credentialsFile = /etc/b2-credentials;
            passwordFile = "/nix/store/0000000000000000000000000000000-restic-password";
          };
        };
      in
      {
        failed = ours c;
        warnings = c.warnings;
        repository = c.storage.backup.repository;
      };
    expected = {
      failed = [
        ''storage.backup.b2.credentialsFile is a Nix path literal (/etc/b2-credentials), which copies the file into the world-readable Nix store. Set storage.backup.b2.credentialsFile to the absolute path of a root-only file written at run time, as a string, e.g. storage.backup.b2.credentialsFile = "/run/secrets/b2-credentials"; (OpNix/1Password or sops-nix write such files).''
        ''storage.backup.b2.passwordFile points into the Nix store (/nix/store/0000000000000000000000000000000-restic-password), where every user can read it. Set storage.backup.b2.passwordFile to the absolute path of a root-only file written at run time, as a string, e.g. storage.backup.b2.passwordFile = "/run/secrets/restic-password"; (OpNix/1Password or sops-nix write such files).''
      ];
      warnings = [
        "storage.backup: 1000 GB expected on B2 cost about $6.00 a month at $6.00/TB, over this host's budget storage.backup.b2.monthlyBudget = $2.00."
      ];
      repository = "s3:http://127.0.0.1:9000/acme-backups/hetzner";
    };
  };
}
