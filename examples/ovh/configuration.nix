# Example host "ovh": utility VPS (200 GB), the simplified server profile
# `ovh` (docs/reference/storage-profiles.md): impermanent root, no database
# subvolumes. Built by ../../flake.nix as nixosConfigurations.ovh.
# Install: docs/how-to/install-a-host.md. Replace the values marked REPLACE.
{ modulesPath, ... }:
{
  imports = [
    (modulesPath + "/profiles/qemu-guest.nix")
    ../server-common.nix
  ];

  networking.hostName = "ovh";

  storage = {
    enable = true;
    profile = "ovh";
    disks.main.device = "/dev/sda"; # REPLACE if `lsblk` shows /dev/vda
  };

  virtualisation.podman.enable = true;
}
