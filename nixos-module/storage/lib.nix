# Helpers shared by the storage module files: derived facts about the
# configured layout. `cfg` is config.storage.
{ lib }:
cfg:
let
  enabledSubvolumes = lib.filterAttrs (_: sv: sv.enable) cfg.btrfs.subvolumes;
  onDisk = disk: lib.filterAttrs (_: sv: sv.disk == disk) enabledSubvolumes;
  mounted = lib.filterAttrs (_: sv: sv.mountpoint != null) enabledSubvolumes;
  # The disk whose filesystem holds `/` gets a partition named "root", so its
  # device is /dev/disk/by-partlabel/disk-<disk>-root; any other disk's
  # Btrfs partition is named "data".
  holdsRoot = disk: lib.any (sv: sv.mountpoint == "/") (lib.attrValues (onDisk disk));
  btrfsPartName = disk: if holdsRoot disk then "root" else "data";
  partDevice = disk: part: "/dev/disk/by-partlabel/disk-${disk}-${part}";
  btrfsDevice = disk: partDevice disk (btrfsPartName disk);
  # Disks with at least one enabled subvolume get a Btrfs filesystem.
  btrfsDisks = lib.filter (d: onDisk d != { }) (lib.attrNames cfg.disks);
  # One mount point per Btrfs filesystem (scrub and balance act on the
  # whole filesystem through any of its mounts): `/` if it is there, else
  # the alphabetically first.
  fsMountPoint =
    disk:
    let
      mps = lib.sort (a: b: a < b) (
        lib.mapAttrsToList (_: sv: sv.mountpoint) (lib.filterAttrs (_: sv: sv.mountpoint != null) (onDisk disk))
      );
    in
    if mps == [ ] then null else if lib.elem "/" mps then "/" else lib.head mps;
  rootSubvolume = lib.findFirst (n: enabledSubvolumes.${n}.mountpoint == "/") null (
    lib.attrNames enabledSubvolumes
  );

  # The options each fstab line of a subvolume gets (disko appends subvol=).
  mountOptionsOf =
    sv:
    let
      disk = cfg.disks.${sv.disk} or null;
      level = if sv.compression != null then sv.compression else disk.compression or null;
    in
    [ "noatime" ]
    ++ lib.optionals cfg.btrfs.ssdOptimization [
      "ssd"
      "discard=async"
    ]
    ++ [ "space_cache=v2" ]
    # NOCOW files are never compressed; the option would only mislead.
    ++ lib.optional (!sv.nocow && level != null) "compress=zstd:${toString level}"
    ++ lib.optional (disk != null && disk.nofail) "nofail"
    ++ sv.mountOptions;
  # What is wrong with a secret option's value (null: nothing). It must be
  # the absolute path of a file, as a string outside the Nix store: a path
  # literal or a store path would copy the secret into the world-readable
  # store, anything else would be the secret itself.
  secretProblem =
    v:
    if v == null then "is not set"
    else if builtins.isPath v then "is a Nix path literal (${toString v}), which copies the file into the world-readable Nix store"
    else if !(lib.isString v) then "is not a path string"
    else if lib.hasPrefix builtins.storeDir (toString v) then "points into the Nix store (${toString v}), where every user can read it"
    else if !(lib.hasPrefix "/" v) then "is not an absolute path (${v}); it must name a file, never hold the secret itself"
    else null;
in
{
  inherit
    secretProblem
    enabledSubvolumes
    onDisk
    mounted
    holdsRoot
    btrfsPartName
    partDevice
    btrfsDevice
    btrfsDisks
    fsMountPoint
    rootSubvolume
    mountOptionsOf
    ;
}
