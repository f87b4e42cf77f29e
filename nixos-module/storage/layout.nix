# disko.devices generated from storage.disks, storage.swap and
# storage.btrfs.subvolumes. disko turns them into fileSystems and
# swapDevices for NixOS and into the formatting script for the install
# (`disko --mode destroy,format,mount`). Partition labels:
# disk-<disk>-{bios,ESP,swap,root|data}.
{
  config,
  lib,
  options,
  ...
}:
let
  top = config.storage;
  L = import ./lib.nix { inherit lib; } top;

  subvolumesOf =
    disk:
    lib.mapAttrs (
      _: sv:
      lib.optionalAttrs (sv.mountpoint != null) {
        inherit (sv) mountpoint;
        mountOptions = L.mountOptionsOf sv;
      }
    ) (L.onDisk disk);

  nocowNames = disk: lib.attrNames (lib.filterAttrs (_: sv: sv.nocow) (L.onDisk disk));

  # Runs after the subvolumes exist; $device is set by disko. +C only
  # takes effect on an empty directory (new files inherit it).
  nocowHook =
    disk:
    lib.optionalString (nocowNames disk != [ ]) ''
      (
        MNTPOINT=$(mktemp -d)
        mount "$device" "$MNTPOINT" -o subvol=/
        trap 'umount "$MNTPOINT"; rm -rf "$MNTPOINT"' EXIT
        for subvol in ${lib.concatMapStringsSep " " lib.escapeShellArg (nocowNames disk)}; do
          if [ -z "$(ls -A "$MNTPOINT/$subvol")" ]; then
            chattr +C "$MNTPOINT/$subvol"
          fi
        done
      )
    '';

  diskConfig = name: d: {
    type = "disk";
    inherit (d) device;
    content = {
      type = "gpt";
      partitions =
        lib.optionalAttrs d.biosBoot {
          bios = {
            priority = 1;
            size = "1M";
            type = "EF02";
          };
        }
        // lib.optionalAttrs d.esp {
          ESP = {
            priority = 2;
            size = d.espSize;
            type = "EF00";
            content = {
              type = "filesystem";
              format = "vfat";
              mountpoint = "/boot";
              mountOptions = [ "umask=0077" ];
            };
          };
        }
        // lib.optionalAttrs (top.swap.enable && top.swap.disk == name) {
          swap = {
            priority = 3;
            inherit (top.swap) size;
            content = {
              type = "swap";
              inherit (top.swap) randomEncryption;
            };
          };
        }
        // lib.optionalAttrs (L.onDisk name != { }) {
          ${L.btrfsPartName name} = {
            size = "100%";
            content = {
              type = "btrfs";
              extraArgs = [ "-f" ];
              subvolumes = subvolumesOf name;
              postCreateHook = nocowHook name;
            };
          };
        };
    };
  };
in
{
  # disko's module may be absent (root-rotate's module alone, as in the VM
  # tests): then define nothing under disko, and assert when enabled.
  config = lib.mkIf top.enable (
    lib.optionalAttrs (options ? disko) {
      disko.devices.disk = lib.mapAttrs diskConfig top.disks;
    }
    // {
    assertions = [
      {
        assertion = options ? disko;
        message = "storage: storage.enable needs disko's NixOS module (imports = [ disko.nixosModules.disko ]); it generates the layout.";
      }
      {
        assertion = L.rootSubvolume != null || top.activeProfile == null;
        message = "storage: no enabled subvolume in storage.btrfs.subvolumes has mountpoint = \"/\".";
      }
      {
        assertion = lib.length (lib.filter (d: d.esp) (lib.attrValues top.disks)) <= 1;
        message = "storage: more than one disk has esp = true; /boot can be mounted from one only.";
      }
    ];
    }
  );
}
