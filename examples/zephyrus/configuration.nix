# Example host "zephyrus": development laptop with two NVMe disks, from the
# `zephyrus` profile (docs/reference/storage-profiles.md): the 2 TB Crucial
# P3 holds system, development, containers and databases; the 1 TB Micron
# 2450 holds caches, local backups and snapshot copies, mounted `nofail`
# (a dead secondary does not stop the boot). Swap sized for hibernation.
# Built by ../../flake.nix as nixosConfigurations.zephyrus. Install:
# docs/how-to/install-a-host.md. Replace the values marked REPLACE.
{ ... }:
{
  imports = [ ../laptop-common.nix ];

  networking.hostName = "zephyrus";

  storage = {
    enable = true;
    profile = "zephyrus";
    # REPLACE with the /dev/disk/by-id/nvme-… names from `ls -l /dev/disk/by-id`:
    # the kernel numbering of two NVMe disks is not guaranteed.
    disks.primary.device = "/dev/nvme0n1";
    disks.secondary.device = "/dev/nvme1n1";
  };

  services.postgresql.enable = true;
  services.redis.servers."".enable = true;
}
