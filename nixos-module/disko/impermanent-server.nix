# disko layout for an impermanent server (seed 001, the Hetzner VPS):
# GPT with BIOS boot + ESP + randomly encrypted swap + one Btrfs filesystem.
#
#   import ./impermanent-server.nix { device = "/dev/sda"; swapSize = "8G"; }
#
# Returns { disko.devices = ...; }. Mount options: see
# docs/explanation/nocow-and-mount-options.md. In short, Btrfs applies
# compress/ssd/space_cache/discard filesystem-wide from the FIRST mount (/ in
# stage 1); only VFS options such as noatime really act per mount. The
# per-subvolume zstd levels below document intent and keep every fstab line
# self-consistent; they do not give /nix a different level than /.
{
  device ? "/dev/vda",
  swapSize ? "32G",
  # Partition labels become /dev/disk/by-partlabel/disk-<diskName>-<part>.
  diskName ? "main",
  ...
}:
let
  common = [
    "noatime"
    "ssd"
    "space_cache=v2"
    "discard=async"
  ];
  zstd = level: common ++ [ "compress=zstd:${toString level}" ];
in
{
  disko.devices.disk.${diskName} = {
    type = "disk";
    inherit device;
    content = {
      type = "gpt";
      partitions = {
        bios = {
          priority = 1;
          size = "1M";
          type = "EF02"; # GRUB core image for BIOS boot (Hetzner Cloud x86)
        };
        ESP = {
          priority = 2;
          size = "1G";
          type = "EF00";
          content = {
            type = "filesystem";
            format = "vfat";
            mountpoint = "/boot";
            mountOptions = [ "umask=0077" ];
          };
        };
        swap = {
          priority = 3;
          size = swapSize;
          content = {
            type = "swap";
            # New key every boot: no hibernation (nothing to resume from),
            # no swapped secrets surviving a reboot.
            randomEncryption = true;
          };
        };
        root = {
          size = "100%";
          content = {
            type = "btrfs";
            extraArgs = [ "-f" ];
            subvolumes = {
              # Mounted first in stage 1, so its options are the ones the
              # whole filesystem runs with.
              "@root" = {
                mountpoint = "/";
                mountOptions = zstd 3;
              };
              "@nix" = {
                mountpoint = "/nix";
                mountOptions = zstd 1;
              };
              "@persist" = {
                mountpoint = "/persist";
                mountOptions = zstd 3;
              };
              "@log" = {
                mountpoint = "/var/log";
                mountOptions = zstd 3;
              };
              # NOCOW comes from chattr +C (postCreateHook below), not from a
              # nodatacow mount option, which Btrfs would ignore here. NOCOW
              # files are never compressed, so no compress= either.
              "@containers" = {
                mountpoint = "/var/lib/containers";
                mountOptions = common;
              };
              "@caddy" = {
                mountpoint = "/var/lib/caddy";
                mountOptions = zstd 3;
              };
              # Not mounted: snapshot tools mount it on demand.
              "@snapshots" = { };
              # Not mounted: root-rotate mounts the top level itself, and a
              # permanently mounted archive tree would make archives look
              # "in use" to tools and easy to write into by accident.
              "@old_roots" = { };
            };
            # Runs after the subvolumes exist. +C only takes effect on an
            # empty directory (new files inherit it), so only set it then.
            # $device is defined by disko for this hook.
            postCreateHook = ''
              (
                MNTPOINT=$(mktemp -d)
                mount "$device" "$MNTPOINT" -o subvol=/
                trap 'umount "$MNTPOINT"; rm -rf "$MNTPOINT"' EXIT
                if [ -z "$(ls -A "$MNTPOINT/@containers")" ]; then
                  chattr +C "$MNTPOINT/@containers"
                fi
              )
            '';
          };
        };
      };
    };
  };
}
