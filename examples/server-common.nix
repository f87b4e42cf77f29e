# Shared by the example servers (hetzner, contabo, ovh): boot loader, network,
# SSH and users of an impermanent VPS. Not a host itself (no configuration.nix).
{ lib, ... }:
{
  imports = [ ./b2-backup.nix ];
  system.stateVersion = "26.05";
  boot.initrd.systemd.enable = lib.mkDefault true;

  # Legacy BIOS (SeaBIOS) on all three providers: GRUB goes into the EF02
  # partition of the profile's layout; disko fills in boot.loader.grub.devices.
  # The ESP is there too, so the same layout boots on UEFI.
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

  networking.useNetworkd = true;
  systemd.network.networks."10-wan" = {
    matchConfig.Name = "en*";
    networkConfig.DHCP = "ipv4";
  };

  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };

  # The root is wiped at every boot (storage.impermanentRoot, the server
  # default): users must be declarative, and machine-id, SSH host keys,
  # /var/lib/nixos and /var/lib/systemd persist under /persist.
  users.mutableUsers = false;
  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIREPLACEREPLACEREPLACEREPLACEREPLACEREPLACE admin@example" # REPLACE
  ];
  storage.impermanence.persistence.serverDefaults = true;

  # Alerts go to Datadog: the agent scrapes the local node exporter (a
  # narrow metric list) and receives a DogStatsD service check per job run.
  storage.monitoring.datadog = {
    enable = true;
    apiKeyFile = "/run/secrets/datadog-api-key"; # written at run time, never in the store
  };

  nix.settings.experimental-features = [
    "nix-command"
    "flakes"
  ];
}
