# Hosts that the docs' Nix examples are evaluated in (./doc-examples).
# A `module` or `fragment` example is one more module on top of one of these.
{ nixos }:
let
  inherit (nixos) lib;
  # The layout the impermanence README's snippet expects: `root`,
  # `old_roots` and `persistent` on one Btrfs partition, no disko.
  snippetLayout =
    let
      dev = "/dev/disk/by-partlabel/disk-main-root";
      btrfs = subvol: {
        device = dev;
        fsType = "btrfs";
        options = [ "subvol=${subvol}" "noatime" ];
      };
    in
    {
      system.stateVersion = "26.05";
      boot.loader.grub.devices = [ "/dev/vda" ];
      fileSystems."/" = btrfs "root";
      fileSystems."/nix" = btrfs "nix";
      fileSystems."/persist" = btrfs "persistent" // { neededForBoot = true; };
    };
in
{
  # The example host the getting-started tutorial builds.
  hetzner-vps =
    { backend, systemdInitrd }:
    extra:
    nixos.exampleHost {
      name = "hetzner-vps";
      inherit systemdInitrd;
      persistence = backend;
      inherit extra;
    };

  # The storage.* production server example (examples/hetzner).
  hetzner =
    { backend, systemdInitrd }:
    extra:
    nixos.exampleHost {
      name = "hetzner";
      inherit systemdInitrd extra;
      persistence = backend;
    };

  # A server with storage.* on and nothing else: the example chooses the
  # profile (or detection does).
  storage-auto =
    { backend, systemdInitrd }:
    extra:
    nixos.evalSystem (
      lib.optional (backend != null) nixos.persistenceModules.${backend}
      ++ [
        {
          system.stateVersion = "26.05";
          boot.loader.grub.enable = true;
          boot.initrd.systemd.enable = systemdInitrd;
          storage.enable = true;
        }
      ]
      ++ extra
    );

  # A host that used the snippet: other subvolume names, plain fileSystems.
  snippet-layout =
    { backend, systemdInitrd }:
    extra:
    nixos.evalSystem (
      lib.optional (backend != null) nixos.persistenceModules.${backend}
      ++ [
        snippetLayout
        { boot.initrd.systemd.enable = systemdInitrd; }
      ]
      ++ extra
    );
}
