# yoga: light laptop, one NVMe, UEFI. Swap big enough to hibernate (16 GB
# RAM) with boot.resumeDevice; persistent root unless the host opts into
# storage.impermanentRoot. Database subvolumes exist in the profile but are
# disabled: enable them on a host that runs PostgreSQL or Redis.
{
  impermanentRoot = false;
  disks.main = {
    device = "/dev/nvme0n1";
    size = "1T";
    biosBoot = false;
    esp = true;
    espSize = "1G";
    compression = 3;
  };
  swap = {
    size = "20G";
    disk = "main";
    randomEncryption = false;
    hibernation = true;
  };
  btrfs = {
    ssdOptimization = true;
    enforceDatabaseNodatacow = true;
    subvolumes = {
      "@root".mountpoint = "/";
      "@nix".mountpoint = "/nix";
      "@persist" = {
        mountpoint = "/persist";
        neededForBoot = true;
      };
      "@home".mountpoint = "/home";
      "@log" = {
        mountpoint = "/var/log";
        neededForBoot = true;
      };
      "@containers" = {
        mountpoint = "/var/lib/containers";
        nocow = true;
      };
      "@postgresql" = {
        enable = false;
        mountpoint = "/var/lib/postgresql";
        nocow = true;
      };
      "@redis" = {
        enable = false;
        mountpoint = "/var/lib/redis";
        nocow = true;
      };
      "@backups".mountpoint = "/var/lib/backups";
      "@snapshots" = { };
      "@old_roots" = { };
    };
  };
  snapshots = {
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
