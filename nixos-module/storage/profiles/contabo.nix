# contabo: staging VPS (536 GB, legacy BIOS boot). Mirrors hetzner's
# subvolumes without Caddy's, with less swap and laxer policies: zstd:1
# (cheaper writes; staging data is disposable) and a balance every quarter.
let
  hetzner = import ./hetzner.nix;
in
hetzner
// {
  disks.main = hetzner.disks.main // {
    size = "536G";
    compression = 1;
  };
  swap = hetzner.swap // {
    size = "4G";
  };
  btrfs = hetzner.btrfs // {
    subvolumes = removeAttrs hetzner.btrfs.subvolumes [ "@caddy" ];
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
