# storage.impermanentRoot: root-rotate (storage.impermanence) on the disk
# holding `/`, with the profile's @root and @old_roots.
{ config, lib, ... }:
let
  top = config.storage;
  L = import ./lib.nix { inherit lib; } top;
  rootDisk = if L.rootSubvolume == null then null else L.enabledSubvolumes.${L.rootSubvolume}.disk;
  archive = top.impermanence.archiveSubvolume;
in
{
  config = lib.mkIf (top.enable && top.impermanentRoot && rootDisk != null) {
    storage.impermanence = {
      enable = lib.mkDefault true;
      device = lib.mkDefault (L.btrfsDevice rootDisk);
      rootSubvolume = lib.mkDefault L.rootSubvolume;
    };
    assertions = [
      {
        assertion = (L.enabledSubvolumes.${archive} or { disk = null; }).disk == rootDisk;
        message = ''storage.impermanentRoot: the archive subvolume "${archive}" must be an enabled subvolume on the same disk as "/" ("${rootDisk}"); add storage.btrfs.subvolumes."${archive}" = { disk = "${rootDisk}"; }.'';
      }
    ];
  };
}
