# Example host: a Hetzner Cloud x86 VPS with an impermanent Btrfs root.
# Built by ../../flake.nix as nixosConfigurations.hetzner-vps (systemd stage 1)
# and nixosConfigurations.hetzner-vps-scripted (scripted stage 1); that flake
# also imports disko, impermanence and root-rotate's module.
# Replace the values marked REPLACE before installing (docs/getting-started.md).
{
  lib,
  modulesPath,
  ...
}:
{
  imports = [
    (modulesPath + "/profiles/qemu-guest.nix")
    ./storage.nix
  ];

  networking.hostName = "hetzner-vps";
  system.stateVersion = "26.05";

  # Initrd flavour. systemd stage 1 is the NixOS default since 26.05; the
  # flake's hetzner-vps-scripted output sets this to false to get the
  # scripted stage 1 (storage.impermanence.scriptedHook then applies).
  boot.initrd.systemd.enable = lib.mkDefault true;

  # Hetzner Cloud x86 boots with legacy BIOS (SeaBIOS): GRUB goes into the
  # EF02 partition; disko fills in boot.loader.grub.devices. The ESP is
  # there too so the same layout boots on UEFI.
  boot.loader.grub = {
    enable = true;
    efiSupport = true;
    efiInstallAsRemovable = true;
  };
  boot.initrd.availableKernelModules = [
    "ahci"
    "xhci_pci"
    "virtio_pci"
    "virtio_scsi"
    "sd_mod"
    "sr_mod"
  ];

  # IPv4 by DHCP. For IPv6 add the /64 from the Hetzner console, e.g.
  # systemd.network.networks."10-wan".address = [ "2a01:4f8:xxxx:xxxx::1/64" ];
  networking.useNetworkd = true;
  systemd.network.networks."10-wan" = {
    matchConfig.Name = "en*";
    networkConfig.DHCP = "ipv4";
    routes = [ { Gateway = "fe80::1"; } ];
  };

  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };

  # /etc is wiped at every boot, so users must be fully declarative.
  users.mutableUsers = false;
  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIREPLACEREPLACEREPLACEREPLACEREPLACEREPLACE admin@example" # REPLACE
  ];

  # Caddy and containers have their own subvolumes in the layout.
  services.caddy.enable = true;
  virtualisation.podman.enable = true;

  services.btrfs.autoScrub = {
    enable = true;
    fileSystems = [ "/" ];
  };
  services.fstrim.enable = true;

  nix.settings.experimental-features = [
    "nix-command"
    "flakes"
  ];
}
