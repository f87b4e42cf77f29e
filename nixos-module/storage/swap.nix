# storage.swap.*: a swap partition on one disk. Servers: a new random key
# every boot (nothing to resume from, no secrets surviving a reboot).
# Laptops: plain swap at least as large as RAM, and boot.resumeDevice, so
# that hibernation resumes before root-rotate could touch the root (see
# docs/explanation/hibernation.md).
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf;
  top = config.storage;
  cfg = config.storage.swap;
  L = import ./lib.nix { inherit lib; } top;
  device = L.partDevice cfg.disk "swap";
in
{
  options.storage.swap = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Create a swap partition on `storage.swap.disk`.";
    };
    size = mkOption {
      type = types.strMatching "[0-9]+[KMGT]";
      default = "8G";
      example = "40G";
      description = ''
        Size of the swap partition. With `hibernation` it must hold all
        memory in use: at least the RAM size.
      '';
    };
    disk = mkOption {
      type = types.str;
      default = "main";
      example = "primary";
      description = "The `storage.disks` entry that gets the swap partition.";
    };
    randomEncryption = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Encrypt swap with a key made at every boot
        (`swapDevices.*.randomEncryption`). Excludes `hibernation`.
      '';
    };
    hibernation = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Resume from this swap: sets `boot.resumeDevice` to
        `/dev/disk/by-partlabel/disk-<disk>-swap`. Needs
        `randomEncryption = false`.
      '';
    };
  };

  config = mkIf (top.enable && cfg.enable) {
    boot.resumeDevice = mkIf cfg.hibernation device;
    assertions = [
      {
        assertion = !(cfg.hibernation && cfg.randomEncryption);
        message = "storage.swap: hibernation and randomEncryption exclude each other (the key is gone after the reboot you resume from).";
      }
      {
        assertion = top.activeProfile == null || top.disks ? ${cfg.disk};
        message = ''storage.swap.disk = "${cfg.disk}", but storage.disks has no such disk.'';
      }
    ];
  };
}
