# Eval tests of storage.* (nixos-module/storage/) against real NixOS: per
# profile the generated fileSystems, swap, resume device, subvolumes, NOCOW
# and maintenance; each assertion on its bad input; host overrides of the
# profile's defaults. The example hosts (examples/<host>/) are evaluated to a
# toplevel drvPath by ./cases.nix. Run by ./run.
{ nixos, disko }:
let
  inherit (nixos) lib failedAssertions hostWith;

  ours = c: builtins.filter (m: lib.hasPrefix "storage" m) (failedAssertions c);

  # What a test reads back from a configuration.
  summary =
    c:
    let
      # The top-level mounts of storage.snapshots are checked by ./cases-snapshots.nix.
      btrfs = lib.filterAttrs (n: f: f.fsType == "btrfs" && !lib.hasPrefix "/mnt/btrfs/" n) c.fileSystems;
      disks = c.disko.devices.disk;
      btrfsPart = d: lib.findFirst (p: p.content.type or null == "btrfs") null (lib.attrValues d.content.partitions);
    in
    {
      failed = failedAssertions c;
      warnings = c.warnings;
      # mount point -> "device options" (x-initrd.mount is NixOS's mark for
      # stage-1 mounts, the consequence of neededForBoot; left out here).
      mounts = lib.mapAttrs (
        _: f: "${f.device} ${lib.concatStringsSep "," (lib.remove "x-initrd.mount" f.options)}"
      ) btrfs;
      neededForBoot = lib.attrNames (lib.filterAttrs (_: f: f.neededForBoot) c.fileSystems);
      boot = if c.fileSystems ? "/boot" then "${c.fileSystems."/boot".device} ${c.fileSystems."/boot".fsType}" else null;
      # disk -> partitions in order, with GPT type codes.
      partitions = lib.mapAttrs (
        _: d: map (p: "${p.name}:${p.type}:${p.size}") (lib.sort (a: b: a.priority < b.priority) (lib.attrValues d.content.partitions))
      ) disks;
      # disk -> every subvolume of its Btrfs filesystem (mounted or not).
      subvolumes = lib.mapAttrs (_: d: lib.attrNames (btrfsPart d).content.subvolumes) disks;
      nocowHooks = lib.mapAttrs (_: d: builtins.match ".*for subvol in ([^;]*);.*" (btrfsPart d).content.postCreateHook) disks;
      tmpfilesH = builtins.filter (r: lib.hasPrefix "h /var/lib" r) c.systemd.tmpfiles.rules;
      swap = map (s: "${s.device} randomEncryption=${lib.boolToString s.randomEncryption.enable}") c.swapDevices;
      resume = c.boot.resumeDevice;
      impermanence = if c.storage.impermanence.enable then "${c.storage.impermanence.device} ${c.storage.impermanence.rootSubvolume} ${c.storage.impermanence.archiveSubvolume}" else null;
      scrub = "${c.services.btrfs.autoScrub.interval} ${toString c.services.btrfs.autoScrub.fileSystems}";
      fstrim = "${lib.boolToString c.services.fstrim.enable} ${c.services.fstrim.interval}";
      balance = "${c.systemd.timers.btrfs-balance.timerConfig.OnCalendar} ${lib.concatStringsSep " " (lib.drop 1 (lib.splitString " " c.systemd.services.btrfs-balance.serviceConfig.ExecStart))}";
    };

  ssd = "noatime,ssd,discard=async,space_cache=v2";
  dev = disk: part: "/dev/disk/by-partlabel/disk-${disk}-${part}";
  mount = disk: part: subvol: opts: "${dev disk part} ${opts},subvol=${subvol}";

  serverMounts =
    level: extra:
    let
      z = mount "main" "root";
      c = "${ssd},compress=zstd:${toString level}";
    in
    {
      "/" = z "@root" c;
      "/nix" = z "@nix" c;
      "/persist" = z "@persist" c;
      "/home" = z "@home" c;
      "/var/log" = z "@log" c;
      "/var/lib/containers" = z "@containers" ssd;
      "/var/lib/backups" = z "@backups" c;
    }
    // extra level;
  dbMounts = level: {
    "/var/lib/postgresql" = mount "main" "root" "@postgresql" ssd;
    "/var/lib/redis" = mount "main" "root" "@redis" ssd;
  };
  serverParts = swap: [
    "bios:EF02:1M"
    "ESP:EF00:1G"
    "swap:8200:${swap}"
    "root:8300:100%"
  ];
  serverCommon = {
    failed = [ ];
    warnings = [ ];
    neededForBoot = [ "/persist" "/var/log" ];
    boot = "${dev "main" "ESP"} vfat";
    resume = "";
    impermanence = "${dev "main" "root"} @root @old_roots";
    fstrim = "true weekly";
  };
  serverSubvols = extra: lib.sort (a: b: a < b) ([ "@backups" "@containers" "@home" "@log" "@nix" "@old_roots" "@persist" "@root" "@snapshots" ] ++ extra);
in
{
  testStorageProfileHetzner = {
    expr = summary (hostWith "hetzner" [ ]);
    expected = serverCommon // {
      mounts = serverMounts 3 (l: dbMounts l // { "/var/lib/caddy" = mount "main" "root" "@caddy" "${ssd},compress=zstd:3"; });
      partitions.main = serverParts "8G";
      subvolumes.main = serverSubvols [ "@caddy" "@postgresql" "@redis" ];
      nocowHooks.main = [ "@containers @postgresql @redis" ];
      tmpfilesH = [ "h /var/lib/containers - - - - +C" "h /var/lib/postgresql - - - - +C" "h /var/lib/redis - - - - +C" ];
      swap = [ "${dev "main" "swap"} randomEncryption=true" ];
      scrub = "monthly /";
      balance = "monthly -d 50 -m 30 /";
    };
  };

  testStorageProfileContabo = {
    expr = summary (hostWith "contabo" [ ]);
    expected = serverCommon // {
      mounts = serverMounts 1 dbMounts;
      partitions.main = serverParts "4G";
      subvolumes.main = serverSubvols [ "@postgresql" "@redis" ];
      nocowHooks.main = [ "@containers @postgresql @redis" ];
      tmpfilesH = [ "h /var/lib/containers - - - - +C" "h /var/lib/postgresql - - - - +C" "h /var/lib/redis - - - - +C" ];
      swap = [ "${dev "main" "swap"} randomEncryption=true" ];
      scrub = "monthly /";
      balance = "quarterly -d 50 -m 30 /";
    };
  };

  testStorageProfileOvh = {
    expr = summary (hostWith "ovh" [ ]);
    expected = serverCommon // {
      mounts = serverMounts 3 (_: { });
      partitions.main = serverParts "2G";
      subvolumes.main = serverSubvols [ ];
      nocowHooks.main = [ "@containers" ];
      tmpfilesH = [ "h /var/lib/containers - - - - +C" ];
      swap = [ "${dev "main" "swap"} randomEncryption=true" ];
      scrub = "monthly /";
      balance = "quarterly -d 50 -m 30 /";
    };
  };

  testStorageProfileYoga = {
    expr = summary (hostWith "yoga" [ ]);
    expected = {
      failed = [ ];
      warnings = [ ];
      mounts =
        let
          z = mount "main" "root";
          c = "${ssd},compress=zstd:3";
        in
        {
          "/" = z "@root" c;
          "/nix" = z "@nix" c;
          "/persist" = z "@persist" c;
          "/home" = z "@home" c;
          "/var/log" = z "@log" c;
          "/var/lib/containers" = z "@containers" ssd;
          "/var/lib/backups" = z "@backups" c;
        };
      neededForBoot = [ "/persist" "/var/log" ];
      boot = "${dev "main" "ESP"} vfat";
      partitions.main = [ "ESP:EF00:1G" "swap:8200:20G" "root:8300:100%" ];
      subvolumes.main = [ "@backups" "@containers" "@home" "@log" "@nix" "@old_roots" "@persist" "@root" "@snapshots" ];
      nocowHooks.main = [ "@containers" ];
      tmpfilesH = [ "h /var/lib/containers - - - - +C" ];
      swap = [ "${dev "main" "swap"} randomEncryption=false" ];
      resume = dev "main" "swap";
      impermanence = null;
      scrub = "monthly /";
      fstrim = "true weekly";
      balance = "monthly -d 50 -m 30 /";
    };
  };

  testStorageProfileZephyrus = {
    expr = summary (hostWith "zephyrus" [ ]);
    expected = {
      failed = [ ];
      warnings = [ ];
      mounts =
        let
          p = mount "primary" "root";
          s = mount "secondary" "data";
          c = "${ssd},compress=zstd:3";
        in
        {
          "/" = p "@root" c;
          "/nix" = p "@nix" c;
          "/persist" = p "@persist" c;
          "/home" = p "@home" c;
          "/var/log" = p "@log" c;
          "/var/lib/containers" = p "@containers" ssd;
          "/var/lib/postgresql" = p "@postgresql" ssd;
          "/var/lib/redis" = p "@redis" ssd;
          # The secondary: nofail, so a dead disk does not stop the boot.
          "/var/cache" = s "@cache" "${c},nofail";
          "/var/lib/backups" = s "@backups" "${c},nofail";
        };
      neededForBoot = [ "/persist" "/var/log" ];
      boot = "${dev "primary" "ESP"} vfat";
      partitions = {
        primary = [ "ESP:EF00:2G" "swap:8200:40G" "root:8300:100%" ];
        secondary = [ "data:8300:100%" ];
      };
      subvolumes = {
        primary = [ "@containers" "@home" "@log" "@nix" "@old_roots" "@persist" "@postgresql" "@redis" "@root" "@snapshots" ];
        secondary = [ "@backups" "@cache" "@snapshot-copies" ];
      };
      nocowHooks = {
        primary = [ "@containers @postgresql @redis" ];
        secondary = null;
      };
      tmpfilesH = [ "h /var/lib/containers - - - - +C" "h /var/lib/postgresql - - - - +C" "h /var/lib/redis - - - - +C" ];
      swap = [ "${dev "primary" "swap"} randomEncryption=false" ];
      resume = dev "primary" "swap";
      impermanence = null;
      scrub = "monthly / /var/cache";
      fstrim = "true weekly";
      balance = "monthly -d 50 -m 30 / /var/cache";
    };
  };

  # A host overrides the profile's defaults with plain definitions.
  testStorageProfileOverride = {
    expr =
      let
        c = hostWith "hetzner" [
          {
            storage = {
              disks.main.device = "/dev/vda";
              disks.main.compression = 1;
              swap.size = "16G";
              impermanentRoot = false;
              btrfs.subvolumes."@redis".enable = false;
              btrfs.subvolumes."@srv" = {
                mountpoint = "/srv";
                compression = 6;
              };
              maintenance.balance.dataUsage = 20;
            };
          }
        ];
      in
      {
        inherit (c.disko.devices.disk.main) device;
        swapSize = c.disko.devices.disk.main.content.partitions.swap.size;
        root = c.fileSystems."/".options;
        srv = c.fileSystems."/srv".options;
        redis = c.fileSystems ? "/var/lib/redis";
        impermanence = c.storage.impermanence.enable;
        balance = lib.drop 1 (lib.splitString " " c.systemd.services.btrfs-balance.serviceConfig.ExecStart);
        failed = failedAssertions c;
      };
    expected = {
      device = "/dev/vda";
      swapSize = "16G";
      root = [ "x-initrd.mount" "noatime" "ssd" "discard=async" "space_cache=v2" "compress=zstd:1" "subvol=@root" ];
      srv = [ "noatime" "ssd" "discard=async" "space_cache=v2" "compress=zstd:6" "subvol=@srv" ];
      redis = false;
      impermanence = false;
      balance = [ "-d" "20" "-m" "30" "/" ];
      failed = [ ];
    };
  };

  # Each assertion of storage.* on its bad input, and the warning that
  # replaces the database assertion when enforcement is off.
  testStorageAssertions = {
    expr =
      let
        pgCow = { storage.btrfs.subvolumes."@postgresql".nocow = false; };
        check = profile: extra: let c = hostWith profile extra; in { failed = ours c; warnings = c.warnings; };
      in
      {
        enforced = check "hetzner" [ pgCow ];
        notEnforced = check "hetzner" [ pgCow { storage.btrfs.enforceDatabaseNodatacow = false; } ];
        nodatacowOption = (check "ovh" [ { storage.btrfs.subvolumes."@containers".mountOptions = [ "nodatacow" ]; } ]).failed;
        hibernateEncrypted = (check "yoga" [ { storage.swap.randomEncryption = true; } ]).failed;
        secondaryInStage1 = (check "zephyrus" [ { storage.btrfs.subvolumes."@cache".neededForBoot = true; } ]).failed;
        unknownDisk = (check "yoga" [ { storage.btrfs.subvolumes."@srv" = { disk = "data"; mountpoint = "/srv"; }; } ]).failed;
        # No report: detection has nothing to go on (detect.nix not needed).
        autoWithoutReport = (check "auto" [ ]).failed;
      };
    expected = {
      enforced = {
        failed = [
          ''storage.btrfs: database subvolume(s) @postgresql without nocow = true. Copy-on-write fragments database files that are rewritten in place; set storage.btrfs.subvolumes."<name>".nocow = true (or storage.btrfs.enforceDatabaseNodatacow = false to accept it with a warning).''
        ];
        warnings = [ ];
      };
      notEnforced = {
        failed = [ ];
        warnings = [
          "storage.btrfs: database subvolume(s) @postgresql are copy-on-write (nocow = false); expect fragmentation and write amplification under database load."
        ];
      };
      nodatacowOption = [
        ''storage.btrfs: subvolume(s) @containers have nodatacow/nodatasum/datacow in mountOptions. Btrfs applies these to the whole filesystem from its first mount, never per subvolume; use storage.btrfs.subvolumes."<name>".nocow = true (chattr +C) instead.''
      ];
      hibernateEncrypted = [
        "storage.swap: hibernation and randomEncryption exclude each other (the key is gone after the reboot you resume from)."
      ];
      secondaryInStage1 = [
        ''storage.btrfs.subvolumes."@cache": neededForBoot on the nofail disk "secondary"; stage 1 would wait for a disk that is allowed to be missing.''
      ];
      unknownDisk = [
        ''storage.btrfs.subvolumes."@srv".disk = "data", but storage.disks has no such disk (it has: main).''
      ];
      autoWithoutReport = [
        ''storage.profile = "auto" could not pick a profile: no nixos-facter report (hardware.facter.reportPath is null). Set storage.profile to one of zephyrus, yoga, hetzner, contabo, ovh.''
      ];
    };
  };
}
