# zephyrus: heavy development laptop, UEFI, two NVMe disks as two separate
# Btrfs filesystems (not RAID1):
#   primary   Crucial P3 2 TB:   system, development, containers, databases
#   secondary Micron 2450 1 TB:  caches, local backups, snapshot copies
# Every mount of the secondary is `nofail`: a dead secondary leaves
# /var/cache and /var/lib/backups as empty directories on the root and the
# laptop boots. Swap on the primary, big enough to hibernate (32 GB RAM).
let
  primary = attrs: attrs // { disk = "primary"; };
  secondary = attrs: attrs // { disk = "secondary"; };
in
{
  impermanentRoot = false;
  disks = {
    primary = {
      device = "/dev/nvme0n1";
      size = "2T";
      biosBoot = false;
      esp = true;
      espSize = "2G";
      compression = 3;
      nofail = false;
    };
    secondary = {
      device = "/dev/nvme1n1";
      size = "1T";
      biosBoot = false;
      esp = false;
      compression = 3;
      nofail = true;
    };
  };
  swap = {
    size = "40G";
    disk = "primary";
    randomEncryption = false;
    hibernation = true;
  };
  btrfs = {
    ssdOptimization = true;
    enforceDatabaseNodatacow = true;
    subvolumes = {
      "@root" = primary { mountpoint = "/"; };
      "@nix" = primary { mountpoint = "/nix"; };
      "@persist" = primary {
        mountpoint = "/persist";
        neededForBoot = true;
      };
      "@home" = primary { mountpoint = "/home"; };
      "@log" = primary {
        mountpoint = "/var/log";
        neededForBoot = true;
      };
      "@containers" = primary {
        mountpoint = "/var/lib/containers";
        nocow = true;
      };
      "@postgresql" = primary {
        mountpoint = "/var/lib/postgresql";
        nocow = true;
      };
      "@redis" = primary {
        mountpoint = "/var/lib/redis";
        nocow = true;
      };
      "@old_roots" = primary { };
      # btrbk's snapshot_dir: snapshots stay on their own filesystem.
      "@snapshots" = primary { };
      "@cache" = secondary { mountpoint = "/var/cache"; };
      "@backups" = secondary { mountpoint = "/var/lib/backups"; };
      # Copies of the primary's snapshots (btrfs send/receive target).
      "@snapshot-copies" = secondary { };
    };
  };
  snapshots = {
    # Copies on the secondary NVMe: a dead primary loses no snapshot.
    copies = {
      enable = true;
      disk = "secondary";
      subvolume = "@snapshot-copies";
    };
    schedule = "hourly";
    retention = {
      hourly = 24;
      daily = 7;
      weekly = 4;
      monthly = 12;
      min = "latest";
    };
  };
  maintenance = {
    trim.interval = "weekly";
    scrub.interval = "monthly";
    balance = {
      interval = "monthly";
      dataUsage = 50;
      metadataUsage = 30;
    };
  };
}
