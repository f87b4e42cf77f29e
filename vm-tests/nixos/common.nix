# The test machine shared by persistence.nix and rollback.nix: the same disk
# layout as the qemu suite (vm-tests/lib/init), in a real NixOS stage 1 of
# either flavour.
#
# /dev/vda is an empty disk. On the first boot a stage-1 step formats it
# (Btrfs with @persist and an empty @root, as disko would); root-rotate then
# creates @old_roots. /nix comes from the host store (9p), as in every NixOS
# test, so there is no @nix here.
#
# A test-only knob mirrors the qemu suite's rescue path: with `rr.rescue=rollback`
# on the kernel command line (QEMU_KERNEL_PARAMS), stage 1 runs
# `root-rotate rollback --device /dev/vda --latest` before the rotation, the
# way an operator would from the initrd emergency shell.
{ self, systemdInitrd }:
{ lib, pkgs, ... }:
let
  device = "/dev/vda";

  # First boot only: no filesystem on the disk yet.
  formatScript = ''
    export PATH=/bin:/sbin:$PATH
    if ! btrfs filesystem show ${device} >/dev/null 2>&1; then
      mkfs.btrfs -q ${device}
      mkdir -p /rr-fmt
      mount -t btrfs -o subvolid=5 ${device} /rr-fmt
      btrfs subvolume create /rr-fmt/@persist
      # As disko would: root-rotate refuses a filesystem where neither the
      # root nor the archive directory exists beside other subvolumes.
      btrfs subvolume create /rr-fmt/@root
      mkdir -p /rr-fmt/@persist/var/lib/data
      umount /rr-fmt
      rmdir /rr-fmt
    fi
  '';
  rescueScript = ''
    export PATH=/bin:/sbin:$PATH
    read -r rr_cmdline </proc/cmdline
    case " $rr_cmdline " in *" rr.rescue=rollback "*)
      echo "rr-test: rescue: root-rotate rollback --latest"
      root-rotate rollback --device ${device} --latest ;;
    esac
  '';
in
{
  imports = [ self.nixosModules.default ];

  # The binary under test is this flake's package.
  storage.impermanence.package = self.packages.x86_64-linux.default;

  virtualisation = {
    useDefaultFilesystems = false;
    diskSize = 1024;
    memorySize = 1024;
    # qemu-vm sets fileSystems from this with mkVMOverride.
    fileSystems = {
      "/" = {
        inherit device;
        fsType = "btrfs";
        options = [ "subvol=@root" ];
      };
      "/persist" = {
        inherit device;
        fsType = "btrfs";
        options = [ "subvol=@persist" ];
        neededForBoot = true;
      };
      # A persisted directory, bind-mounted as impermanence would.
      "/var/lib/data" = {
        device = "/persist/var/lib/data";
        fsType = "none";
        options = [ "bind" ];
      };
    };
  };

  storage.impermanence = {
    enable = true;
    inherit device;
    keepDays = 30;
    keepAtLeast = 3;
    onFailure = "continue";
    prune.enable = false; # nothing to prune; keep the tests deterministic
  };

  environment.systemPackages = [ pkgs.btrfs-progs ];

  # systemd stage 1: two oneshot units ordered before the module's service.
  boot.initrd.systemd = lib.mkMerge [
    { enable = systemdInitrd; }
    (lib.mkIf systemdInitrd {
      initrdBin = [ pkgs.btrfs-progs ];
      services.rr-test-format = {
        unitConfig.DefaultDependencies = "no";
        requires = [ "dev-vda.device" ];
        after = [ "dev-vda.device" ];
        before = [
          "rr-test-rescue.service"
          "root-rotate.service"
          "sysroot.mount"
        ];
        requiredBy = [ "root-rotate.service" ];
        serviceConfig.Type = "oneshot";
        script = formatScript;
      };
      services.rr-test-rescue = {
        unitConfig.DefaultDependencies = "no";
        after = [ "rr-test-format.service" ];
        before = [
          "root-rotate.service"
          "sysroot.mount"
        ];
        wantedBy = [ "root-rotate.service" ];
        serviceConfig.Type = "oneshot";
        script = rescueScript;
      };
    })
  ];

  # Scripted stage 1: postDeviceCommands runs before the module's hook
  # (postResumeCommands).
  boot.initrd.extraUtilsCommands = lib.mkIf (!systemdInitrd) ''
    copy_bin_and_libs ${pkgs.btrfs-progs}/bin/mkfs.btrfs
  '';
  boot.initrd.postDeviceCommands = lib.mkIf (!systemdInitrd) (
    # Subshells: hook text is inlined into stage-1-init.sh, keep PATH there.
    lib.mkBefore "(\n${formatScript})\n(\n${rescueScript})\n"
  );
}
