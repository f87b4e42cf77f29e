# Hosts that ./disko-format formats on sparse loop disks: one line a host.
#
#   <host> = { disks.<disko disk name> = "<size, as `truncate -s` reads it>"; };
#
# Every disk of the host's `disko.devices.disk` needs a size (the harness
# fails if one is missing or extra). Optional attributes:
#   example = "<directory under examples/>";   default: the host's name
#   modules = [ ... ];          NixOS modules added to the example host
#   systemdInitrd = false;      default true (the flake's main flavour)
#   persistence = "preservation";               default "impermanence"
#   nocow = [ "@subvol" ];      expected NOCOW besides those the host's
#                               tmpfiles `h <mountpoint> ... +C` lines give
# Sizes: GB = 10^9 bytes, G = 2^30 (coreutils). A sparse file costs nothing.
{
  hetzner-vps = { disks.main = "458GB"; };
  # The storage.* profiles (examples/<host>/), disks sized like the real ones.
  hetzner = { disks.main = "458GB"; };
  contabo = { disks.main = "536GB"; };
  ovh = { disks.main = "200GB"; };
  yoga = { disks.main = "1TB"; };
  zephyrus = { disks = { primary = "2TB"; secondary = "1TB"; }; };
}
