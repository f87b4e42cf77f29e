# storage.*: host profiles, Btrfs layouts, swap, impermanence and maintenance.
# One source of truth: the profile (data, ./profiles/*.nix, applied with
# mkDefault) plus storage.btrfs.subvolumes generate disko.devices and, through
# disko, fileSystems and swapDevices. Reference:
# docs/reference/storage-profiles.md and docs/reference/nixos-options.md.
{
  imports = [
    ./core.nix
    ./btrfs.nix
    ./layout.nix
    ./swap.nix
    ./impermanence.nix
    ./maintenance.nix
    ./snapshots.nix
    ./backup.nix
    ./monitoring.nix
  ];
}
