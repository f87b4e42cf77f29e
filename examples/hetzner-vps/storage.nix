# Storage for the Hetzner VPS: seed-001 disko layout + storage.impermanence.
# Plain NixOS module (no flake inputs) so nixos-module/tests/run evaluates it.
# Imported by ./configuration.nix; the disko, impermanence and root-rotate
# modules themselves are imported by the flake (../../flake.nix).
{ ... }:
{
  disko.devices =
    (import ../../nixos-module/disko/impermanent-server.nix {
      # Check with `lsblk` in the rescue system: Hetzner Cloud usually
      # shows its virtio-scsi disk as /dev/sda.
      device = "/dev/sda";
      swapSize = "8G";
    }).disko.devices;

  # Stage 1 must mount persistent state before the root is used. /var/log in
  # stage 1 too, so the journal of early boot lands on disk.
  fileSystems."/persist".neededForBoot = true;
  fileSystems."/var/log".neededForBoot = true;

  storage.impermanence = {
    enable = true;
    # device defaults to fileSystems."/".device, which disko sets to
    # /dev/disk/by-partlabel/disk-main-root.
    keepDays = 30;
    keepAtLeast = 5;
    onFailure = "continue";
    persistence = {
      # backend is detected from the imported module: the flake imports
      # impermanence for hetzner-vps(-scripted), preservation for
      # hetzner-vps-preservation.
      serverDefaults = true;
      directories = [ "/var/lib/acme" ];
    };
  };

  # NOCOW for container images, second line of defence: disko's
  # postCreateHook sets +C on the empty subvolume at install time; this
  # tmpfiles `h` line re-applies it at each boot (new files only).
  systemd.tmpfiles.rules = [ "h /var/lib/containers - - - - +C" ];
}
