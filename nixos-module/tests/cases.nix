# Eval tests for nixos-module/, in nix-unit's shape: { testX = { expr; expected; }; }.
# Every case that concerns NixOS behaviour evaluates real NixOS
# (nixos/lib/eval-config.nix, through ./nixos.nix); only the disko layout
# function, our own pure Nix, is checked with disko's library alone.
# Run by ./run; see docs/testing.md.
{ nixos, disko }:
let
  inherit (nixos) lib evalSystem failedAssertions;

  dev = "/dev/disk/by-partlabel/disk-main-root";
  devUnit = "dev-disk-by\\x2dpartlabel-disk\\x2dmain\\x2droot.device";
  layout = args: import ../disko/impermanent-server.nix args;

  # A minimal impermanent host on the server layout, with the module's
  # default package. `persistence` picks the backend module (or none).
  hostWith =
    {
      systemd ? true,
      persistence ? "impermanence",
      extra ? [ ],
    }:
    (evalSystem (
      lib.optional (persistence != null) nixos.persistenceModules.${persistence}
      ++ [
        (layout { })
        {
          system.stateVersion = "26.05";
          boot.loader.grub.enable = true;
          boot.initrd.systemd.enable = systemd;
          fileSystems."/persist".neededForBoot = true;
          storage.impermanence.enable = true;
        }
      ]
      ++ extra
    )).config;
  systemdHost = extra: hostWith { inherit extra; };
  scriptedHost = extra: hostWith { systemd = false; inherit extra; };
  exeOf = c: "${c.storage.impermanence.package}/bin/root-rotate";

  # Our assertions only: nixpkgs' own must not fire either, which the host
  # cases check with the full list.
  ours = c: builtins.filter (lib.hasPrefix "storage.") (failedAssertions c);

  defaultFlags = "--device ${dev} --mount-point /btrfs_tmp --root @root --archive @old_roots --keep-days 30 --keep-at-least 3 --budget-ms 5000";
  waitLoop = ''
    # storage.impermanence: archive the root subvolume, start from a blank one
    rr_i=0
    while [ ! -e ${dev} ] && [ "$rr_i" -lt 20 ]; do
      sleep 1
      rr_i=$((rr_i + 1))
    done
  '';
  scriptedHooks =
    { hook, onFailure }:
    (scriptedHost [ { storage.impermanence = { scriptedHook = hook; inherit onFailure; }; } ]).boot.initrd;
  # builtins.match refuses strings that refer to store paths.
  noContext = builtins.unsafeDiscardStringContext;
  atWords = s: builtins.length (builtins.split "@[a-zA-Z_][0-9A-Za-z_'-]*@" s) - 1;
  deprecatedScripted = lib.hasPrefix "Scripted initrd is deprecated";

  # Every example host, in each flavour the flake builds (../../flake.nix).
  exampleNames = lib.attrNames (lib.filterAttrs (_: t: t == "directory") (builtins.readDir ../../examples));
  flavours = {
    systemd-impermanence = { systemdInitrd = true; persistence = "impermanence"; };
    scripted-impermanence = { systemdInitrd = false; persistence = "impermanence"; };
    systemd-preservation = { systemdInitrd = true; persistence = "preservation"; };
  };
  storageJobs = {
    snapshots = { kind = "timers"; name = "btrbk-storage"; };
    backup = { kind = "timers"; name = "restic-backups-storage"; };
    check = { kind = "timers"; name = "storage-backup-check"; };
    drill = { kind = "timers"; name = "storage-restore-drill"; };
    metrics = { kind = "timers"; name = "storage-metrics"; };
    exporter = { kind = "services"; name = "prometheus-node-exporter"; };
  };
  hostCase =
    name: flavour:
    let
      c = (nixos.exampleHost ({ inherit name; } // flavour)).config;
      drv = c.system.build.toplevel.drvPath;
    in
    {
      expr = {
        failed = failedAssertions c;
        # Ours add none; nixpkgs warns about the scripted flavour itself.
        warnings = builtins.filter (w: !deprecatedScripted w) c.warnings;
        toplevel = lib.hasPrefix "/nix/store/" drv && lib.hasSuffix ".drv" drv;
        defaultPackage = c.storage.impermanence.package.name;
        # The five storage.* hosts snapshot, back up, drill and export metrics
        # (hetzner-vps is the storage.impermanence-only example).
        jobs = lib.mapAttrs (_: u: c.systemd.${u.kind} ? ${u.name}) storageJobs;
      };
      expected = {
        jobs = lib.mapAttrs (_: _: name != "hetzner-vps") storageJobs;
        failed = [ ];
        warnings = [ ];
        toplevel = true;
        # The static (musl) build of this repository's Cargo package.
        defaultPackage = "root-rotate-static-x86_64-unknown-linux-musl-${(lib.importTOML ../../Cargo.toml).package.version}";
      };
    };
  hostCases = lib.listToAttrs (
    lib.concatMap (
      name:
      lib.mapAttrsToList (f: flavour: {
        name = "testHost-${name}-${f}";
        value = hostCase name flavour;
      }) flavours
    ) exampleNames
  );

  diskoLib = import (disko + "/lib") {
    inherit lib;
    makeTest = null;
    eval-config = null;
    qemu-common = null;
  };
  diskoDevices =
    args:
    (lib.evalModules {
      modules = [
        { options.disko.devices = lib.mkOption { type = diskoLib.toplevel; }; }
        (layout args)
      ];
    }).config.disko.devices;
  btrfsOpts = extra: [ "noatime" "ssd" "space_cache=v2" "discard=async" ] ++ extra;
in
hostCases
// {
  # The unit exactly as NixOS writes it into the initrd.
  testSystemdUnitText = {
    expr = let c = systemdHost [ ]; in { inherit (c.boot.initrd.systemd.units."root-rotate.service") text; exe = exeOf c; };
    expected = let c = systemdHost [ ]; in {
      exe = exeOf c;
      text = ''
        [Unit]
        After=${devUnit} local-fs-pre.target
        Before=sysroot.mount shutdown.target
        Conflicts=shutdown.target
        DefaultDependencies=no
        Description=Archive the Btrfs root subvolume and start from a blank one
        Requires=${devUnit}

        [Service]
        Environment="LOCALE_ARCHIVE=${c.i18n.glibcLocales}/lib/locale/locale-archive"
        Environment="TZDIR=${c.time.timeZonePackage or nixos.pkgs.tzdata}/share/zoneinfo"
        ExecStart=${exeOf c} rotate ${defaultFlags}
        TimeoutStartSec=35s
        Type=oneshot

        [Install]
        WantedBy=initrd.target
      '';
    };
  };

  # wantedBy/requiredBy become initrd.target.wants/.requires links.
  testSystemdOnFailure = {
    expr = lib.genAttrs [ "continue" "fail" ] (
      onFailure:
      let u = (systemdHost [ { storage.impermanence.onFailure = onFailure; } ]).boot.initrd.systemd.units."root-rotate.service";
      in { inherit (u) wantedBy requiredBy; }
    );
    expected = {
      continue = { wantedBy = [ "initrd.target" ]; requiredBy = [ ]; };
      fail = { wantedBy = [ ]; requiredBy = [ "initrd.target" ]; };
    };
  };

  testSystemdFlagsFromOptions = {
    expr =
      let
        c = systemdHost [
          {
            storage.impermanence = {
              mountPoint = "/run/rr";
              rootSubvolume = "root";
              archiveSubvolume = "old_roots";
              keepDays = 14;
              keepAtLeast = 5;
              budget = 2500;
            };
            fileSystems."/".options = lib.mkForce [ "noatime" "subvol=root" ];
          }
        ];
        s = c.boot.initrd.systemd.services.root-rotate.serviceConfig;
      in
      { inherit (s) ExecStart TimeoutStartSec; failed = failedAssertions c; exe = exeOf c; };
    expected =
      let exe = exeOf (systemdHost [ ]); in {
        inherit exe;
        ExecStart = "${exe} rotate --device ${dev} --mount-point /run/rr --root root --archive old_roots --keep-days 14 --keep-at-least 5 --budget-ms 2500";
        TimeoutStartSec = "33s";
        failed = [ ];
      };
  };

  # The binary is in the initrd itself (make-initrd-ng's contents), and no
  # scripted hook is set: nixpkgs asserts on every one under systemd stage 1.
  testSystemdBinaryInInitrdAndNoScriptedHooks = {
    expr =
      let
        c = systemdHost [ ];
        contents = builtins.fromJSON (builtins.unsafeDiscardStringContext c.system.build.initialRamdisk.contentsJSON);
      in
      {
        inInitrd = builtins.any (e: e.source == exeOf c) contents;
        extraBin = c.boot.initrd.systemd.extraBin.root-rotate == exeOf c;
        inherit (c.boot.initrd) extraUtilsCommands postResumeCommands postDeviceCommands;
        failed = failedAssertions c;
      };
    expected = {
      inInitrd = true;
      extraBin = true;
      extraUtilsCommands = "";
      postResumeCommands = "";
      postDeviceCommands = "";
      failed = [ ];
    };
  };

  testScriptedPostResumeHookText = {
    expr =
      let i = scriptedHooks { hook = "postResumeCommands"; onFailure = "continue"; };
      in { inherit (i) postResumeCommands postDeviceCommands; hasUnit = i.systemd.services ? root-rotate; };
    expected = {
      postResumeCommands = waitLoop + ''
        root-rotate rotate ${defaultFlags} || echo "root-rotate failed (exit $?); booting the previous root unchanged"
      '';
      # nixpkgs' btrfs module scans for multi-device filesystems here.
      postDeviceCommands = "btrfs device scan\n";
      hasUnit = false;
    };
  };

  testScriptedPostDeviceHookTextFail = {
    expr =
      let i = scriptedHooks { hook = "postDeviceCommands"; onFailure = "fail"; };
      in { inherit (i) postResumeCommands postDeviceCommands; };
    expected = {
      postResumeCommands = "";
      # After nixpkgs' own device scan (mkAfter), so multi-device Btrfs is known.
      postDeviceCommands = "btrfs device scan\n\n" + waitLoop + ''
        root-rotate rotate ${defaultFlags} || fail
      '';
    };
  };

  # The derivations that build stage 1 carry our text: the init script's
  # substitutions hold the hook, extra-utils' build copies and runs the binary.
  testScriptedStage1 = {
    expr =
      let
        c = scriptedHost [ ];
        i = c.boot.initrd;
        inherit (c.system.build) bootStage1 extraUtils;
      in {
        # Other modules (e2fsprogs, btrfs-progs) append their own lines.
        extraUtilsCommands = lib.hasPrefix "copy_bin_and_libs ${exeOf c}\n" i.extraUtilsCommands;
        extraUtilsCommandsTest = lib.hasPrefix "$out/bin/root-rotate --version\n" i.extraUtilsCommandsTest;
        hookInStage1 = lib.hasInfix "root-rotate rotate ${defaultFlags}" (noContext bootStage1.buildPhase);
        copiedByExtraUtils = lib.hasInfix (noContext "copy_bin_and_libs ${exeOf c}") (noContext extraUtils.buildCommand);
        testedByExtraUtils = lib.hasInfix "$out/bin/root-rotate --version" (noContext extraUtils.buildCommand);
        failed = failedAssertions c;
        exe = exeOf c;
      };
    expected = let exe = exeOf (scriptedHost [ ]); in {
      inherit exe;
      extraUtilsCommands = true;
      extraUtilsCommandsTest = true;
      hookInStage1 = true;
      copiedByExtraUtils = true;
      testedByExtraUtils = true;
      failed = [ ];
    };
  };

  testHookTextHasNoAtWords = {
    expr = map (c: atWords (let i = scriptedHooks c; in i.postResumeCommands + i.postDeviceCommands)) [
      { hook = "postResumeCommands"; onFailure = "continue"; }
      { hook = "postResumeCommands"; onFailure = "fail"; }
      { hook = "postDeviceCommands"; onFailure = "continue"; }
      { hook = "postDeviceCommands"; onFailure = "fail"; }
    ];
    expected = [ 0 0 0 0 ];
  };

  # After boot: the prune service and its timer, as systemd reads them.
  testPruneServiceAndTimer = {
    expr = let c = systemdHost [ ]; in {
      service = c.systemd.units."root-rotate-prune.service".text;
      timer = c.systemd.units."root-rotate-prune.timer".text;
      timerWantedBy = c.systemd.units."root-rotate-prune.timer".wantedBy;
      exe = exeOf c;
    };
    expected = let c = systemdHost [ ]; exe = exeOf c; in {
      inherit exe;
      service = ''
        [Unit]
        After=local-fs.target
        Description=Prune archived Btrfs roots deferred by the boot-time budget

        [Service]
        Environment="LOCALE_ARCHIVE=${c.i18n.glibcLocales}/lib/locale/locale-archive"
        Environment="PATH=${lib.makeBinPath c.systemd.services.root-rotate-prune.path}:${lib.makeSearchPath "sbin" c.systemd.services.root-rotate-prune.path}"
        Environment="TZDIR=${c.time.timeZonePackage or nixos.pkgs.tzdata}/share/zoneinfo"
        ExecStart=${exe} prune --device ${dev} --mount-point /btrfs_tmp --archive @old_roots --keep-days 30 --keep-at-least 3 --budget-ms 120000
        IOSchedulingClass=idle
        Nice=19
        NoNewPrivileges=true
        PrivateMounts=true
        PrivateNetwork=true
        Type=oneshot
      '';
      timer = ''
        [Unit]
        Description=Prune archived Btrfs roots

        [Timer]
        OnBootSec=5min
        OnCalendar=daily
        Persistent=true
        RandomizedDelaySec=10min


        [Install]
        WantedBy=timers.target
      '';
      timerWantedBy = [ "timers.target" ];
    };
  };

  # Each assertion fires on its bad configuration, with the message a user reads.
  testAssertWrongRootSubvolume = {
    expr = ours (systemdHost [ { fileSystems."/".options = lib.mkForce [ "subvol=@" ]; } ]);
    expected = [
      ''
        storage.impermanence: set fileSystems."/" = { device = "${dev}"; fsType = "btrfs"; options = [ "subvol=@root" ]; }
        (or set storage.impermanence.device / rootSubvolume to match). root-rotate replaces
        subvolume @root on ${dev} at each boot, so / must be mounted from it.''
    ];
  };

  testAssertPersistWithoutNeededForBoot = {
    expr = ours (systemdHost [ { fileSystems."/persist".neededForBoot = lib.mkForce false; } ]);
    expected = [
      ''
        storage.impermanence: set fileSystems."/persist".neededForBoot = true
        (and make sure fileSystems."/persist" is defined), or set
        storage.impermanence.persistentMount = null. Persistent state must be mounted in stage 1.''
    ];
  };

  testAssertRootEqualsArchive = {
    expr = ours (systemdHost [ { storage.impermanence.archiveSubvolume = "@root"; } ]);
    expected = [ "storage.impermanence: set rootSubvolume and archiveSubvolume to different names." ];
  };

  # Stage-1 templating would reject the rendered hook; we say so at eval time.
  testAssertAtWordInHook = {
    expr = ours (scriptedHost [ { fileSystems."/".device = lib.mkForce "/dev/disk/by-label/@x@"; } ]);
    expected = [
      "storage.impermanence: set rootSubvolume/archiveSubvolume/device without at-sign-delimited words; scripted stage 1 rejects them."
    ];
  };

  testAssertBackends = {
    expr = {
      missingModule = ours (hostWith { persistence = null; extra = [ { storage.impermanence.persistence.backend = "impermanence"; } ]; });
      # preservation's own assertion fires too; ours says what to set.
      preservationScripted = ours (hostWith { systemd = false; persistence = "preservation"; });
      noPersistentMount = ours (systemdHost [
        {
          storage.impermanence.persistentMount = null;
          storage.impermanence.persistence.backend = lib.mkForce "impermanence";
        }
      ]);
    };
    expected = {
      missingModule = [ "storage.impermanence: set imports = [ impermanence.nixosModules.impermanence ] (persistence.backend = \"impermanence\")." ];
      preservationScripted = [ "storage.impermanence: set boot.initrd.systemd.enable = true (preservation needs systemd stage 1), or use persistence.backend = \"impermanence\"." ];
      noPersistentMount = [ "storage.impermanence: set storage.impermanence.persistentMount (persistence.backend is set but there is no persistent mount)." ];
    };
  };

  testNoPersistenceModule = {
    expr = let c = hostWith { persistence = null; extra = [ { storage.impermanence.persistence.serverDefaults = true; } ]; }; in {
      backend = c.storage.impermanence.persistence.backend;
      failed = failedAssertions c;
    };
    expected = { backend = null; failed = [ ]; };
  };

  testImpermanenceServerDefaults = {
    expr =
      let
        p = (systemdHost [
          {
            services.openssh.enable = true;
            storage.impermanence.persistence = { serverDefaults = true; directories = [ "/var/lib/acme" ]; };
          }
        ]).environment.persistence."/persist";
      in
      {
        inherit (p) hideMounts;
        directories = map (d: d.directory) p.directories;
        files = map (f: f.file) p.files;
      };
    expected = {
      hideMounts = true;
      directories = [ "/var/lib/nixos" "/var/lib/systemd" "/var/lib/acme" ];
      files = [
        "/etc/machine-id"
        "/etc/ssh/ssh_host_rsa_key"
        "/etc/ssh/ssh_host_rsa_key.pub"
        "/etc/ssh/ssh_host_ed25519_key"
        "/etc/ssh/ssh_host_ed25519_key.pub"
      ];
    };
  };

  # Host keys are symlinks into /persist (preservation's documented way):
  # a bind-mounted empty file would make sshd-keygen's `rm -f` fail.
  testPreservationServerDefaults = {
    expr =
      let
        c = hostWith {
          persistence = "preservation";
          extra = [
            {
              services.openssh.enable = true;
              services.openssh.hostKeys = [ { type = "ed25519"; path = "/etc/ssh/ssh_host_ed25519_key"; } ];
              storage.impermanence.persistence.serverDefaults = true;
            }
          ];
        };
        at = c.preservation.preserveAt."/persist";
        key = "/etc/ssh/ssh_host_ed25519_key";
        view = f: { inherit (f) file how configureParent inInitrd; };
        mountsFor = p: builtins.filter (w: w == p) (map (m: m.where) c.systemd.mounts);
      in
      {
        files = map view at.files;
        directories = map (d: { inherit (d) directory how inInitrd; }) at.directories;
        keyTmpfiles = c.systemd.tmpfiles.settings.preservation.${key};
        pubTmpfiles = c.systemd.tmpfiles.settings.preservation."${key}.pub";
        parentTmpfiles = c.systemd.tmpfiles.settings.preservation."/persist/etc/ssh" or null != null;
        keyMounts = mountsFor key ++ mountsFor "${key}.pub";
        suppressed = c.systemd.suppressedSystemUnits;
        failed = failedAssertions c;
      };
    expected = {
      files = [
        { file = "/etc/machine-id"; how = "bindmount"; configureParent = false; inInitrd = true; }
        { file = "/etc/ssh/ssh_host_ed25519_key"; how = "symlink"; configureParent = true; inInitrd = false; }
        { file = "/etc/ssh/ssh_host_ed25519_key.pub"; how = "symlink"; configureParent = true; inInitrd = false; }
      ];
      directories = [
        { directory = "/var/lib/nixos"; how = "bindmount"; inInitrd = true; }
        { directory = "/var/lib/systemd"; how = "bindmount"; inInitrd = false; }
      ];
      keyTmpfiles.L = { type = "L"; argument = "/persist/etc/ssh/ssh_host_ed25519_key"; user = "root"; group = "root"; mode = "0644"; age = "-"; };
      pubTmpfiles.L = { type = "L"; argument = "/persist/etc/ssh/ssh_host_ed25519_key.pub"; user = "root"; group = "root"; mode = "0644"; age = "-"; };
      parentTmpfiles = true;
      keyMounts = [ ];
      suppressed = [ "systemd-machine-id-commit.service" ];
      failed = [ ];
    };
  };

  testDisabledDoesNothing = {
    expr = let c = (evalSystem [ (layout { }) { system.stateVersion = "26.05"; boot.loader.grub.enable = true; } ]).config; in {
      unit = c.boot.initrd.systemd.units ? "root-rotate.service";
      hook = c.boot.initrd.postResumeCommands;
      timer = c.systemd.timers ? root-rotate-prune;
      failed = failedAssertions c;
    };
    expected = { unit = false; hook = ""; timer = false; failed = [ ]; };
  };

  # What disko's NixOS module makes of the server layout.
  testDiskoFileSystems = {
    expr = lib.mapAttrs (_: fs: { inherit (fs) device fsType options; }) (systemdHost [ ]).fileSystems;
    expected = {
      # NixOS marks what stage 1 mounts: neededForBoot, and paths such as /nix and /var/log.
      "/" = { device = dev; fsType = "btrfs"; options = [ "x-initrd.mount" ] ++ btrfsOpts [ "compress=zstd:3" ] ++ [ "subvol=@root" ]; };
      "/nix" = { device = dev; fsType = "btrfs"; options = [ "x-initrd.mount" ] ++ btrfsOpts [ "compress=zstd:1" ] ++ [ "subvol=@nix" ]; };
      "/persist" = { device = dev; fsType = "btrfs"; options = [ "x-initrd.mount" ] ++ btrfsOpts [ "compress=zstd:3" ] ++ [ "subvol=@persist" ]; };
      "/var/log" = { device = dev; fsType = "btrfs"; options = [ "x-initrd.mount" ] ++ btrfsOpts [ "compress=zstd:3" ] ++ [ "subvol=@log" ]; };
      "/var/lib/containers" = { device = dev; fsType = "btrfs"; options = btrfsOpts [ ] ++ [ "subvol=@containers" ]; };
      "/var/lib/caddy" = { device = dev; fsType = "btrfs"; options = btrfsOpts [ "compress=zstd:3" ] ++ [ "subvol=@caddy" ]; };
      "/boot" = { device = "/dev/disk/by-partlabel/disk-main-ESP"; fsType = "vfat"; options = [ "umask=0077" ]; };
    };
  };

  testDiskoSwapAndBootloader = {
    expr = let c = systemdHost [ ]; in {
      swap = map (s: { inherit (s) device randomEncryption; }) c.swapDevices;
      grub = c.boot.loader.grub.devices;
      resume = c.boot.resumeDevice;
    };
    expected = {
      swap = [ { device = "/dev/disk/by-partlabel/disk-main-swap"; randomEncryption = { enable = true; allowDiscards = false; cipher = "aes-xts-plain64"; keySize = null; sectorSize = null; source = "/dev/urandom"; }; } ];
      grub = [ "/dev/vda" ];
      resume = "";
    };
  };

  # root-rotate.service as NixOS renders it is what vm-tests/systemd-initrd
  # boots under real systemd; the committed copy must not go stale.
  testInitrdUnitFixture = {
    expr = import ./initrd-units.nix { inherit nixos; };
    expected = builtins.fromJSON (builtins.readFile ../../vm-tests/systemd-initrd/rendered-units.json);
  };

  # Below: our own pure Nix (the layout function) through disko's library.
  testDiskoPartitionsAndArguments = {
    expr =
      let
        d = (diskoDevices { device = "/dev/sda"; swapSize = "8G"; }).disk.main;
        p = d.content.partitions;
      in {
        inherit (d) device;
        parts = lib.mapAttrs (_: x: { inherit (x) size type; }) p;
        contentTypes = lib.mapAttrs (_: x: if x.content == null then null else x.content.type) p;
        randomEncryption = p.swap.content.randomEncryption;
      };
    expected = {
      device = "/dev/sda";
      parts = {
        bios = { size = "1M"; type = "EF02"; };
        ESP = { size = "1G"; type = "EF00"; };
        swap = { size = "8G"; type = "8200"; };
        root = { size = "100%"; type = "8300"; };
      };
      contentTypes = { bios = null; ESP = "filesystem"; swap = "swap"; root = "btrfs"; };
      randomEncryption = true;
    };
  };

  testDiskoSubvolumesAndNocowHook = {
    expr =
      let
        btrfs = (diskoDevices { }).disk.main.content.partitions.root.content;
        create = btrfs._create;
      in {
        subvolumes = lib.mapAttrs (_: s: s.mountpoint) btrfs.subvolumes;
        chattrInCreate = lib.hasInfix ''chattr +C "$MNTPOINT/@containers"'' create;
        hookAfterSubvolumes =
          let parts = lib.splitString ''chattr +C'' create;
          in lib.hasInfix ''btrfs subvolume create "$SUBVOL_ABS_PATH"'' (builtins.head parts);
        nodatacowAnywhere = lib.any (s: builtins.elem "nodatacow" s.mountOptions) (lib.attrValues btrfs.subvolumes);
      };
    expected = {
      subvolumes = {
        "@root" = "/";
        "@nix" = "/nix";
        "@persist" = "/persist";
        "@log" = "/var/log";
        "@containers" = "/var/lib/containers";
        "@caddy" = "/var/lib/caddy";
        "@snapshots" = null;
        "@old_roots" = null;
      };
      chattrInCreate = true;
      hookAfterSubvolumes = true;
      nodatacowAnywhere = false;
    };
  };
}
