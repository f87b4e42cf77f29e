# Example host "hetzner": production VPS on Hetzner Cloud x86 (458 GB),
# storage from the `hetzner` profile of root-rotate's storage.* module
# (docs/reference/storage-profiles.md): impermanent root, NOCOW PostgreSQL,
# Redis and Podman subvolumes, Caddy's own subvolume, encrypted swap.
# Built by ../../flake.nix as nixosConfigurations.hetzner, which also imports
# disko, impermanence and root-rotate's module. Install:
# docs/how-to/install-a-host.md. Replace the values marked REPLACE.
{ modulesPath, ... }:
{
  imports = [
    (modulesPath + "/profiles/qemu-guest.nix")
    ../server-common.nix
  ];

  networking.hostName = "hetzner";

  storage = {
    enable = true;
    profile = "hetzner";
    # Check with `lsblk` in the rescue system (virtio-scsi: /dev/sda).
    disks.main.device = "/dev/sda";
  };

  services.postgresql.enable = true;
  services.redis.servers."".enable = true; # data in /var/lib/redis
  services.caddy.enable = true;
  virtualisation.podman.enable = true;
  storage.impermanence.persistence.directories = [ "/var/lib/acme" ];
}
