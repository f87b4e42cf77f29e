# Shared by the example laptops (zephyrus, yoga): UEFI boot, NetworkManager,
# a user. Not a host itself (no configuration.nix).
{ lib, ... }:
{
  imports = [ ./b2-backup.nix ];
  system.stateVersion = "26.05";
  boot.initrd.systemd.enable = lib.mkDefault true;

  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;
  boot.initrd.availableKernelModules = [
    "nvme"
    "xhci_pci"
    "usb_storage"
    "sd_mod"
  ];

  networking.networkmanager.enable = true;
  users.users.dev = {
    isNormalUser = true;
    extraGroups = [
      "wheel"
      "networkmanager"
    ];
    initialPassword = "changeme"; # REPLACE: change it at first login
  };
  virtualisation.podman.enable = true;

  nix.settings.experimental-features = [
    "nix-command"
    "flakes"
  ];
}
