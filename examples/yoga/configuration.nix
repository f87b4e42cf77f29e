# Example host "yoga": light laptop with one NVMe, from the `yoga` profile
# (docs/reference/storage-profiles.md): persistent root, swap sized for
# hibernation with boot.resumeDevice. Built by ../../flake.nix as
# nixosConfigurations.yoga. Install: docs/how-to/install-a-host.md.
{ ... }:
{
  imports = [ ../laptop-common.nix ];

  networking.hostName = "yoga";

  storage = {
    enable = true;
    profile = "yoga";
    disks.main.device = "/dev/nvme0n1"; # REPLACE with its /dev/disk/by-id/ name
  };
}
