# Eval tests of storage.snapshots (nixos-module/storage/snapshots.nix)
# against real NixOS: the btrbk configuration nixpkgs' module renders
# (/etc/btrbk/storage.conf) for a laptop (zephyrus, with copies to its
# secondary NVMe) and a server (hetzner), the timer, the top-level mounts,
# the quiesce ExecStartPre, the run report (ExecStopPost) and the
# retention defaults of every profile.
# ../storage/jobs/btrbk-test runs Debian's btrbk with the same text. Run by ./run.
{ nixos, disko }:
let
  inherit (nixos) lib failedAssertions hostWith;
  noContext = builtins.unsafeDiscardStringContext;
  # Store paths replaced by the file name after them: stable across nixpkgs.
  unstore = s: lib.concatStringsSep " " (map (w: if lib.hasPrefix "/nix/store/" w then lib.last (lib.splitString "/" w) else w) (lib.splitString " " (noContext s)));
  # Store paths replaced by their package name: stable across nixpkgs.
  view =
    c:
    let
      svc = c.systemd.services.btrbk-storage;
    in
    {
      failed = failedAssertions c;
      conf = lib.splitString "\n" c.environment.etc."btrbk/storage.conf".source.text;
      timer = c.systemd.timers.btrbk-storage.timerConfig.OnCalendar;
      execStart = unstore svc.serviceConfig.ExecStart;
      execStartPre = map (s: builtins.replaceStrings [ "-+/nix/store/" ] [ "-+" ] (noContext s)) (lib.toList (svc.serviceConfig.ExecStartPre or [ ]));
      topMounts = lib.mapAttrs (_: f: "${f.device} ${lib.concatStringsSep "," f.options}") (
        lib.filterAttrs (n: _: lib.hasPrefix "/mnt/btrfs/" n) c.fileSystems
      );
      tmpfiles = builtins.filter (lib.hasInfix "@snapshots") c.systemd.tmpfiles.rules;
    };
  stripHash = map (s: let m = builtins.match "-\\+[a-z0-9]{32}-(.*)" s; in if m == null then s else "-+" + lib.head m);
  opts = "subvolid=5,noatime,x-gvfs-hide";
in
{
  testSnapshotsServerHetzner = {
    expr =
      let
        v = view (hostWith "hetzner" [
          {
            services.postgresql.enable = true;
            services.redis.servers."".enable = true;
          }
        ]);
      in
      v // { execStartPre = stripHash v.execStartPre; };
    expected = {
      failed = [ ];
      conf = [
        "backend btrfs-progs-sudo"
        "preserve_day_of_week sunday"
        "preserve_hour_of_day 0"
        "snapshot_preserve 48h 30d 12w 12m"
        "snapshot_preserve_min 2h"
        "stream_compress no"
        "timestamp_format long"
        "volume /mnt/btrfs/main"
        " snapshot_dir @snapshots"
        " subvolume @caddy"
        " subvolume @home"
        " subvolume @persist"
        " subvolume @postgresql"
        " subvolume @redis"
      ];
      timer = "*:0/15";
      execStart = "btrbk -c /etc/btrbk/storage.conf run";
      execStartPre = [
        "-+storage-quiesce/bin/storage-quiesce --redis /run/redis/redis.sock --postgresql /run/postgresql --pg-port 5432 --pg-user postgres --timeout 120"
      ];
      topMounts."/mnt/btrfs/main" = "/dev/disk/by-partlabel/disk-main-root ${opts}";
      tmpfiles = [ "d /mnt/btrfs/main/@snapshots 0755 root root -" ];
    };
  };

  testSnapshotsLaptopZephyrus = {
    expr = view (hostWith "zephyrus" [ ]);
    expected = {
      failed = [ ];
      conf = [
        "backend btrfs-progs-sudo"
        "preserve_day_of_week sunday"
        "preserve_hour_of_day 0"
        "snapshot_preserve 24h 7d 4w 12m"
        "snapshot_preserve_min latest"
        "stream_compress no"
        "timestamp_format long"
        "volume /mnt/btrfs/primary"
        " snapshot_dir @snapshots"
        " target /mnt/btrfs/secondary/@snapshot-copies"
        "  target_preserve 24h 7d 4w 12m"
        "  target_preserve_min latest"
        " subvolume @home"
        " subvolume @persist"
        " subvolume @postgresql"
        " subvolume @redis"
        " subvolume @root"
      ];
      timer = "hourly";
      execStart = "btrbk -c /etc/btrbk/storage.conf run";
      # No database enabled: nothing to quiesce.
      execStartPre = [ ];
      topMounts = {
        "/mnt/btrfs/primary" = "/dev/disk/by-partlabel/disk-primary-root ${opts}";
        "/mnt/btrfs/secondary" = "/dev/disk/by-partlabel/disk-secondary-data ${opts},nofail";
      };
      tmpfiles = [ "d /mnt/btrfs/primary/@snapshots 0755 root root -" ];
    };
  };

  # Retention, schedule and subvolumes of every profile; a host override;
  # a subvolume on a disk without @snapshots is refused.
  testSnapshotsProfileDefaults = {
    expr =
      lib.genAttrs [ "yoga" "contabo" "ovh" ] (
        p:
        let
          c = hostWith p [ ];
          s = c.storage.snapshots;
        in
        {
          inherit (s) schedule subvolumes;
          retention = "${toString s.retention.hourly}h ${toString s.retention.daily}d ${toString s.retention.weekly}w ${toString s.retention.monthly}m min ${s.retention.min}";
          copies = s.copies.enable;
        }
      )
      // {
        override = (hostWith "yoga" [ { storage.snapshots = { retention.daily = 14; schedule = "daily"; }; } ]).environment.etc."btrbk/storage.conf".source.text;
        missingSnapshotDir = builtins.filter (lib.hasPrefix "storage.snapshots") (failedAssertions (hostWith "zephyrus" [ { storage.snapshots.subvolumes = [ "@cache" ]; } ]));
        disabled = (hostWith "ovh" [ { storage.snapshots.enable = false; } ]).services.btrbk.instances;
      };
    expected = {
      yoga = { schedule = "hourly"; subvolumes = [ "@home" "@persist" "@root" ]; retention = "24h 7d 4w 12m min latest"; copies = false; };
      contabo = { schedule = "hourly"; subvolumes = [ "@home" "@persist" "@postgresql" "@redis" ]; retention = "24h 30d 12w 12m min latest"; copies = false; };
      ovh = { schedule = "hourly"; subvolumes = [ "@home" "@persist" ]; retention = "24h 30d 12w 12m min latest"; copies = false; };
      override = lib.concatStringsSep "\n" [
        "backend btrfs-progs-sudo"
        "preserve_day_of_week sunday"
        "preserve_hour_of_day 0"
        "snapshot_preserve 24h 14d 4w 12m"
        "snapshot_preserve_min latest"
        "stream_compress no"
        "timestamp_format long"
        "volume /mnt/btrfs/main"
        " snapshot_dir @snapshots"
        " subvolume @home"
        " subvolume @persist"
        " subvolume @root"
      ];
      missingSnapshotDir = [
        ''storage.snapshots: disk "secondary" holds snapshotted subvolumes but no "@snapshots" subvolume (snapshots stay on their filesystem); add storage.btrfs.subvolumes."@snapshots" = { disk = "secondary"; }.''
      ];
      disabled = { };
    };
  };

  # After every run, storage-snapshot-report (ExecStopPost, as root, its
  # failure ignored) records it with the policy btrbk got, the interval of
  # the schedule and every snapshot directory; a schedule whose period it
  # cannot tell needs storage.snapshots.intervalSeconds.
  testSnapshotsRunReport = {
    expr =
      let
        post = c: map (s: "-+" + unstore (lib.removePrefix "-+" (noContext s))) c.systemd.services.btrbk-storage.serviceConfig.ExecStopPost;
        odd = [ { storage.snapshots.schedule = "Mon..Fri 08..18:00"; } ];
      in
      {
        hetzner = post (hostWith "hetzner" [ ]);
        yoga = post (hostWith "yoga" [ ]);
        every30 = (hostWith "yoga" [ { storage.snapshots.schedule = "*:0/30"; } ]).storage.snapshots.intervalSeconds;
        unknown = builtins.filter (lib.hasPrefix "storage.snapshots.intervalSeconds") (failedAssertions (hostWith "yoga" odd));
        set = (hostWith "yoga" (odd ++ [ { storage.snapshots.intervalSeconds = 7200; } ])).storage.snapshots.intervalSeconds;
      };
    expected = {
      hetzner = [
        "-+storage-snapshot-report --result /var/lib/storage/snapshots.json --interval 900 --preserve '48h 30d 12w 12m' --preserve-min 2h --hour-of-day 0 --dir /mnt/btrfs/main/@snapshots @caddy @home @persist @postgresql @redis"
      ];
      yoga = [
        "-+storage-snapshot-report --result /var/lib/storage/snapshots.json --interval 3600 --preserve '24h 7d 4w 12m' --preserve-min latest --hour-of-day 0 --dir /mnt/btrfs/main/@snapshots @home @persist @root"
      ];
      every30 = 1800;
      unknown = [
        ''storage.snapshots.intervalSeconds: cannot tell the period of schedule "Mon..Fri 08..18:00"; set it (seconds between snapshot runs).''
      ];
      set = 7200;
    };
  };
}
