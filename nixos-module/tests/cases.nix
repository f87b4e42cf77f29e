# Eval tests for nixos-module/, in nix-unit's shape: { testX = { expr; expected; }; }.
# Run by ./run with nixpkgs' lib and a disko checkout; see docs/testing.md.
{ lib, disko }:
let
  stubs = import ./nixos-option-stubs.nix { inherit lib; };
  diskoLib = import (disko + "/lib") {
    inherit lib;
    makeTest = null;
    eval-config = null;
    qemu-common = null;
  };

  pkg = {
    type = "derivation";
    name = "root-rotate-test";
    outPath = "/nix/store/00000000000000000000000000000000-root-rotate-test";
  };
  exe = "${pkg.outPath}/bin/root-rotate";
  dev = "/dev/disk/by-partlabel/disk-main-root";
  devUnit = "dev-disk-by\\x2dpartlabel-disk\\x2dmain\\x2droot.device";

  layout = args: import ../disko/impermanent-server.nix args;

  # A host: our module + the seed-001 layout through disko's own types.
  eval =
    modules:
    (lib.evalModules {
      modules = [
        stubs.nixos
        (stubs.disko diskoLib)
        ../default.nix
      ]
      ++ modules;
    }).config;
  base = {
    imports = [ (layout { }) ];
    fileSystems."/persist".neededForBoot = true;
    storage.impermanence = {
      enable = true;
      package = pkg;
    };
  };
  host = hostWith;
  hostWith = extra: eval ([ base ] ++ extra);
  systemdHost = extra: hostWith ([ { boot.initrd.systemd.enable = true; } ] ++ extra);
  failed = cfg: map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);

  svcView = s: {
    inherit (s)
      unitConfig
      requires
      after
      before
      wantedBy
      requiredBy
      ;
    inherit (s.serviceConfig) Type ExecStart TimeoutStartSec;
  };

  defaultFlags = "--device ${dev} --mount-point /btrfs_tmp --root @root --archive @old_roots --keep-days 30 --keep-at-least 3 --budget-ms 5000";
  waitLoop = ''
    # storage.impermanence: archive the root subvolume, start from a blank one
    rr_i=0
    while [ ! -e ${dev} ] && [ "$rr_i" -lt 20 ]; do
      sleep 1
      rr_i=$((rr_i + 1))
    done
  '';
  hookText = { hook, onFailure }: (hostWith [ { storage.impermanence = { scriptedHook = hook; inherit onFailure; }; } ]).boot.initrd;
  atWords = s: builtins.length (builtins.split "@[a-zA-Z_][0-9A-Za-z_'-]*@" s) - 1;

  # The layout alone, as disko's library evaluates it.
  diskoDevices = args: (lib.evalModules {
    modules = [ { options.disko.devices = lib.mkOption { type = diskoLib.toplevel; }; } (layout args) ];
  }).config.disko.devices;
  fsView = cfg: lib.mapAttrs (_: fs: { inherit (fs) device fsType options; }) cfg.fileSystems;
  btrfsOpts = extra: [ "noatime" "ssd" "space_cache=v2" "discard=async" ] ++ extra ++ [ ];
in
{
  testSystemdServiceRendered = {
    expr = svcView (systemdHost [ ]).boot.initrd.systemd.services.root-rotate;
    expected = {
      unitConfig.DefaultDependencies = "no";
      requires = [ devUnit ];
      after = [ devUnit "local-fs-pre.target" ];
      before = [ "sysroot.mount" "shutdown.target" ];
      wantedBy = [ "initrd.target" ];
      requiredBy = [ ];
      Type = "oneshot";
      ExecStart = "${exe} rotate ${defaultFlags}";
      TimeoutStartSec = "35s";
    };
  };

  testSystemdOnFailureFailIsRequiredBy = {
    expr =
      let s = (systemdHost [ { storage.impermanence.onFailure = "fail"; } ]).boot.initrd.systemd.services.root-rotate;
      in { inherit (s) wantedBy requiredBy; };
    expected = { wantedBy = [ ]; requiredBy = [ "initrd.target" ]; };
  };

  testSystemdBinaryInInitrdAndNoScriptedHooks = {
    expr =
      let i = (systemdHost [ ]).boot.initrd;
      in {
        inherit (i.systemd) storePaths extraBin;
        inherit (i) extraUtilsCommands postResumeCommands postDeviceCommands;
      };
    expected = {
      storePaths = [ exe ];
      extraBin.root-rotate = exe;
      extraUtilsCommands = "";
      postResumeCommands = "";
      postDeviceCommands = "";
    };
  };

  testScriptedPostResumeHookText = {
    expr =
      let i = hookText { hook = "postResumeCommands"; onFailure = "continue"; };
      in { inherit (i) postResumeCommands postDeviceCommands; services = (host [ ]).boot.initrd.systemd.services; };
    expected = {
      postResumeCommands = waitLoop + ''
        root-rotate rotate ${defaultFlags} || echo "root-rotate failed (exit $?); booting the previous root unchanged"
      '';
      postDeviceCommands = "";
      services = { };
    };
  };

  testScriptedPostDeviceHookTextFail = {
    expr =
      let i = hookText { hook = "postDeviceCommands"; onFailure = "fail"; };
      in { inherit (i) postResumeCommands postDeviceCommands; };
    expected = {
      postResumeCommands = "";
      postDeviceCommands = waitLoop + ''
        root-rotate rotate ${defaultFlags} || fail
      '';
    };
  };

  testScriptedExtraUtils = {
    expr =
      let i = (host [ ]).boot.initrd;
      in { inherit (i) extraUtilsCommands extraUtilsCommandsTest; };
    expected = {
      extraUtilsCommands = "copy_bin_and_libs ${exe}\n";
      extraUtilsCommandsTest = "$out/bin/root-rotate --version\n";
    };
  };

  testHookTextHasNoAtWords = {
    expr = map (c: atWords (let i = hookText c; in i.postResumeCommands + i.postDeviceCommands)) [
      { hook = "postResumeCommands"; onFailure = "continue"; }
      { hook = "postResumeCommands"; onFailure = "fail"; }
      { hook = "postDeviceCommands"; onFailure = "continue"; }
      { hook = "postDeviceCommands"; onFailure = "fail"; }
    ];
    expected = [ 0 0 0 0 ];
  };

  # Stage-1 templating would reject the rendered hook; we say so at eval time.
  testAssertAtWordInHook = {
    expr = failed (hostWith [
      { fileSystems."/".device = lib.mkForce "/dev/disk/by-label/@x@"; }
    ]);
    expected = [
      "storage.impermanence: set rootSubvolume/archiveSubvolume/device without at-sign-delimited words; scripted stage 1 rejects them."
    ];
  };

  testFlagsFromOptions = {
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
      { inherit (s) ExecStart TimeoutStartSec; failed = failed c; };
    expected = {
      ExecStart = "${exe} rotate --device ${dev} --mount-point /run/rr --root root --archive old_roots --keep-days 14 --keep-at-least 5 --budget-ms 2500";
      TimeoutStartSec = "33s";
      failed = [ ];
    };
  };

  testPruneServiceAndTimer = {
    expr =
      let c = host [ ];
      in {
        ExecStart = c.systemd.services.root-rotate-prune.serviceConfig.ExecStart;
        PrivateMounts = c.systemd.services.root-rotate-prune.serviceConfig.PrivateMounts;
        timer = c.systemd.timers.root-rotate-prune.timerConfig // { inherit (c.systemd.timers.root-rotate-prune) wantedBy; };
      };
    expected = {
      ExecStart = "${exe} prune --device ${dev} --mount-point /btrfs_tmp --archive @old_roots --keep-days 30 --keep-at-least 3 --budget-ms 120000";
      PrivateMounts = true;
      timer = {
        OnBootSec = "5min";
        OnCalendar = "daily";
        Persistent = true;
        RandomizedDelaySec = "10min";
        wantedBy = [ "timers.target" ];
      };
    };
  };

  testAssertionsPassOnSeedLayout = {
    expr = { scripted = failed (host [ ]); systemd = failed (systemdHost [ ]); };
    expected = { scripted = [ ]; systemd = [ ]; };
  };

  testAssertWrongRootSubvolume = {
    expr = failed (hostWith [ { fileSystems."/".options = lib.mkForce [ "subvol=@" ]; } ]);
    expected = [
      ''
        storage.impermanence: set fileSystems."/" = { device = "${dev}"; fsType = "btrfs"; options = [ "subvol=@root" ]; }
        (or set storage.impermanence.device / rootSubvolume to match). root-rotate replaces
        subvolume @root on ${dev} at each boot, so / must be mounted from it.''
    ];
  };

  testAssertPersistWithoutNeededForBoot = {
    expr = failed (hostWith [ { fileSystems."/persist".neededForBoot = lib.mkForce false; } ]);
    expected = [
      ''
        storage.impermanence: set fileSystems."/persist".neededForBoot = true
        (and make sure fileSystems."/persist" is defined), or set
        storage.impermanence.persistentMount = null. Persistent state must be mounted in stage 1.''
    ];
  };

  testDiskoFileSystems = {
    expr = fsView (hostWith [ ]);
    expected = {
      "/" = { device = dev; fsType = "btrfs"; options = btrfsOpts [ "compress=zstd:3" ] ++ [ "subvol=@root" ]; };
      "/nix" = { device = dev; fsType = "btrfs"; options = btrfsOpts [ "compress=zstd:1" ] ++ [ "subvol=@nix" ]; };
      "/persist" = { device = dev; fsType = "btrfs"; options = btrfsOpts [ "compress=zstd:3" ] ++ [ "subvol=@persist" ]; };
      "/var/log" = { device = dev; fsType = "btrfs"; options = btrfsOpts [ "compress=zstd:3" ] ++ [ "subvol=@log" ]; };
      "/var/lib/containers" = { device = dev; fsType = "btrfs"; options = btrfsOpts [ ] ++ [ "subvol=@containers" ]; };
      "/var/lib/caddy" = { device = dev; fsType = "btrfs"; options = btrfsOpts [ "compress=zstd:3" ] ++ [ "subvol=@caddy" ]; };
      "/boot" = { device = "/dev/disk/by-partlabel/disk-main-ESP"; fsType = "vfat"; options = [ "umask=0077" ]; };
    };
  };

  testDiskoSwapAndBootloader = {
    expr = let c = hostWith [ ]; in {
      swap = map (s: { inherit (s) device randomEncryption; }) c.swapDevices;
      grub = c.boot.loader.grub.devices;
      resume = c.boot.resumeDevice;
    };
    expected = {
      swap = [ { device = "/dev/disk/by-partlabel/disk-main-swap"; randomEncryption = { enable = true; allowDiscards = false; }; } ];
      grub = [ "/dev/vda" ];
      resume = "";
    };
  };

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

  testEvaluatesWithoutPersistenceModules = {
    expr = let c = hostWith [ { storage.impermanence.persistence.serverDefaults = true; } ]; in {
      backend = c.storage.impermanence.persistence.backend;
      hasPersistenceOption = c.environment ? persistence;
      failed = failed c;
    };
    expected = { backend = null; hasPersistenceOption = false; failed = [ ]; };
  };

  testImpermanenceServerDefaults = {
    expr = (hostWith [
      stubs.impermanence
      {
        services.openssh.enable = true;
        storage.impermanence.persistence = { serverDefaults = true; directories = [ "/var/lib/acme" ]; };
      }
    ]).environment.persistence;
    expected."/persist" = {
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

  testPreservationServerDefaults = {
    expr = let c = systemdHost [
      stubs.preservation
      {
        services.openssh.enable = true;
        services.openssh.hostKeys = [ { type = "ed25519"; path = "/etc/ssh/ssh_host_ed25519_key"; } ];
        storage.impermanence.persistence.serverDefaults = true;
      }
    ]; in {
      inherit (c) preservation;
      suppressed = c.systemd.suppressedSystemUnits;
      failed = failed c;
    };
    expected = {
      preservation = {
        enable = true;
        preserveAt."/persist" = {
          directories = [ { directory = "/var/lib/nixos"; inInitrd = true; } "/var/lib/systemd" ];
          files = [
            { file = "/etc/machine-id"; inInitrd = true; }
            { file = "/etc/ssh/ssh_host_ed25519_key"; mode = "0600"; }
            "/etc/ssh/ssh_host_ed25519_key.pub"
          ];
        };
      };
      suppressed = [ "systemd-machine-id-commit.service" ];
      failed = [ ];
    };
  };

  testBackendAssertions = {
    expr = {
      missingModule = failed (hostWith [ { storage.impermanence.persistence.backend = "impermanence"; } ]);
      preservationScripted = failed (hostWith [ stubs.preservation ]);
    };
    expected = {
      missingModule = [ "storage.impermanence: set imports = [ impermanence.nixosModules.impermanence ] (persistence.backend = \"impermanence\")." ];
      preservationScripted = [ "storage.impermanence: set boot.initrd.systemd.enable = true (preservation needs systemd stage 1), or use persistence.backend = \"impermanence\"." ];
    };
  };

  testExampleHostStorage = {
    expr =
      let
        c = eval [
          stubs.impermanence
          ../../examples/hetzner-vps/storage.nix
          { storage.impermanence.package = pkg; }
        ];
      in {
        failed = failed c;
        neededForBoot = lib.filter (n: c.fileSystems.${n}.neededForBoot) (lib.attrNames c.fileSystems);
        grub = c.boot.loader.grub.devices;
        hook = lib.hasInfix "--keep-at-least 5" c.boot.initrd.postResumeCommands;
      };
    expected = {
      failed = [ ];
      neededForBoot = [ "/persist" "/var/log" ];
      grub = [ "/dev/sda" ];
      hook = true;
    };
  };

  testDisabledDoesNothing = {
    expr = let c = eval [ (layout { }) ]; in {
      services = c.boot.initrd.systemd.services;
      hook = c.boot.initrd.postResumeCommands;
      timers = c.systemd.timers;
      failed = failed c;
    };
    expected = { services = { }; hook = ""; timers = { }; failed = [ ]; };
  };
}
