# Example host "contabo": staging VPS (536 GB) mirroring hetzner, from the
# `contabo` profile (docs/reference/storage-profiles.md).
# Built by ../../flake.nix as nixosConfigurations.contabo. Install:
# docs/how-to/install-a-host.md. Replace the values marked REPLACE.
{ modulesPath, ... }:
{
  imports = [
    (modulesPath + "/profiles/qemu-guest.nix")
    ../server-common.nix
  ];

  networking.hostName = "contabo";

  storage = {
    enable = true;
    profile = "contabo";
    disks.main.device = "/dev/sda"; # REPLACE if `lsblk` shows /dev/vda
  };

  services.postgresql.enable = true;
  services.redis.servers."".enable = true;
  virtualisation.podman.enable = true;
}
