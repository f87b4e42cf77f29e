# ovh: utility VPS (200 GB, legacy BIOS boot). The simplified server:
# impermanent root, no database or Caddy subvolumes, smaller swap.
let
  hetzner = import ./hetzner.nix;
in
hetzner
// {
  disks.main = hetzner.disks.main // {
    size = "200G";
  };
  swap = hetzner.swap // {
    size = "2G";
  };
  btrfs = hetzner.btrfs // {
    subvolumes = removeAttrs hetzner.btrfs.subvolumes [
      "@caddy"
      "@postgresql"
      "@redis"
    ];
  };
  snapshots = {
    schedule = "hourly";
    retention = hetzner.snapshots.retention // {
      hourly = 24;
      min = "latest";
    };
  };
  maintenance = hetzner.maintenance // {
    balance = hetzner.maintenance.balance // {
      interval = "quarterly";
    };
  };
}
