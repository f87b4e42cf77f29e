# hetzner: production VPS (Hetzner Cloud x86, 458 GB, legacy BIOS boot).
# PostgreSQL, Redis, Podman and Caddy, each on its own subvolume; an
# impermanent root. Plain data: ../core.nix applies every value with
# mkDefault. Reference: docs/reference/storage-profiles.md.
{
  impermanentRoot = true;
  disks.main = {
    # Hetzner Cloud shows its virtio-scsi disk as /dev/sda.
    device = "/dev/sda";
    size = "458G";
    biosBoot = true; # SeaBIOS: GRUB core image in EF02
    esp = true; # same layout also boots on UEFI
    espSize = "1G";
    compression = 3;
  };
  swap = {
    size = "8G";
    disk = "main";
    randomEncryption = true;
    hibernation = false;
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
        neededForBoot = true; # the journal of early boot lands on disk
      };
      "@containers" = {
        mountpoint = "/var/lib/containers";
        nocow = true;
      };
      "@postgresql" = {
        mountpoint = "/var/lib/postgresql";
        nocow = true;
      };
      "@redis" = {
        mountpoint = "/var/lib/redis";
        nocow = true;
      };
      "@caddy".mountpoint = "/var/lib/caddy";
      "@backups".mountpoint = "/var/lib/backups";
      # Not mounted: snapshot tools mount them on demand; root-rotate
      # mounts the top level itself for @old_roots.
      "@snapshots" = { };
      "@old_roots" = { };
    };
  };
  # RPO 15 min: a snapshot every 15 minutes, all of the last 2 hours kept,
  # then the first of each hour for 48 hours.
  snapshots = {
    schedule = "*:0/15";
    retention = {
      hourly = 48;
      daily = 30;
      weekly = 12;
      monthly = 12;
      min = "2h";
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
