# storage.enable / profile / hostname / disks / impermanentRoot, hardware
# detection (profile = "auto") and applying the chosen profile's data with
# mkDefault, so that a host overrides any of it with a plain definition.
{
  config,
  lib,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkMerge
    types
    literalExpression
    ;

  cfg = config.storage;

  profileNames = [
    "zephyrus"
    "yoga"
    "hetzner"
    "contabo"
    "ovh"
  ];

  # Every leaf of the profile's data as a default: a host's own definition
  # (priority 100) wins, lists are replaced as a whole.
  asDefaults = lib.mapAttrsRecursive (_: lib.mkDefault);

  report = config.hardware.facter.report;
  detection =
    if report == { } then
      {
        profile = null;
        candidates = [ ];
        detected = "no nixos-facter report (hardware.facter.reportPath is null)";
        disks = [ ];
      }
    else
      (import ./detect.nix { inherit lib; }) report;

  active = if cfg.profile == "auto" then detection.profile else cfg.profile;

  # Which detected disk (largest first) becomes which storage.disks entry.
  diskOrder = {
    zephyrus = [
      "primary"
      "secondary"
    ];
  };
  detectedDisks =
    let
      names = diskOrder.${active} or [ "main" ];
      n = lib.min (builtins.length names) (builtins.length detection.disks);
    in
    lib.listToAttrs (
      lib.genList (i: {
        name = builtins.elemAt names i;
        # Above mkDefault (the profile's guess), below a host's definition.
        value.device = lib.mkOverride 900 (builtins.elemAt detection.disks i);
      }) n
    );

  diskType = types.submodule (
    { name, ... }:
    {
      options = {
        device = mkOption {
          type = types.strMatching "/dev/.+";
          example = "/dev/disk/by-id/nvme-CT2000P3SSD8_2325E6E2B6A1";
          description = ''
            The whole disk, as disko's `disk.${name}.device`. A
            `/dev/disk/by-id/…` path survives device renumbering; the
            profiles default to the kernel name the provider or laptop
            shows (with `profile = "auto"`: the path from the
            nixos-facter report).
          '';
        };
        size = mkOption {
          type = types.nullOr (types.strMatching "[0-9]+[KMGT]");
          default = null;
          example = "458G";
          description = ''
            Nominal size of the disk. Not used for partitioning (the Btrfs
            partition takes the rest of the disk); documents the machine and
            sizes the sparse images of the formatting tests.
          '';
        };
        biosBoot = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Create a 1 MiB BIOS boot partition (type `EF02`) for GRUB on
            machines that boot with legacy BIOS (most VPS). disko then fills
            in `boot.loader.grub.devices`.
          '';
        };
        esp = mkOption {
          type = types.bool;
          default = false;
          description = "Create an EFI system partition (type `EF00`, vfat) on this disk, mounted on `/boot`.";
        };
        espSize = mkOption {
          type = types.strMatching "[0-9]+[KMGT]";
          default = "1G";
          description = "Size of the EFI system partition.";
        };
        compression = mkOption {
          type = types.nullOr (types.ints.between 1 15);
          default = 3;
          example = 1;
          description = ''
            zstd level (`compress=zstd:N`) written on every mount of this
            disk's Btrfs filesystem; `null` for none. Btrfs takes it from the
            *first* mount of the filesystem only (for the system disk, `/` in
            stage 1), so one level per filesystem is all there is; see
            docs/explanation/nocow-and-mount-options.md.
          '';
        };
        nofail = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Mount this disk's subvolumes with `nofail`: a missing or dead disk
            does not stop the boot, its mount points stay empty directories
            on the root. For disks holding nothing the system needs (the
            zephyrus secondary NVMe).
          '';
        };
      };
    }
  );
in
{
  options.storage = {
    enable = mkEnableOption ''
      the storage foundation: a host profile generating the disko layout,
      `fileSystems`, swap, Btrfs subvolumes and maintenance timers'';

    profile = mkOption {
      type = types.enum ([ "auto" ] ++ profileNames);
      default = "auto";
      example = "hetzner";
      description = ''
        Host profile whose disks, subvolumes, swap and policies are applied
        as defaults (docs/reference/storage-profiles.md). `"auto"` picks one
        from the nixos-facter report in `hardware.facter.reportPath` at
        evaluation time; when nothing or more than one profile matches, an
        assertion says what was detected and asks to set this option.
      '';
    };

    hostname = mkOption {
      type = types.strMatching "[A-Za-z0-9][A-Za-z0-9-]*";
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      example = "hetzner";
      description = ''
        Name of this host in storage artefacts that leave it (snapshot and
        backup names of the modules built on this one).
      '';
    };

    impermanentRoot = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Start every boot from an empty `@root` (root-rotate archives the old
        one into `@old_roots`). Enables `storage.impermanence` on the
        disk holding `/`; state that must survive lives in `@persist`
        (`/persist`, mounted in stage 1) or its own subvolume. Profile
        default: `true` on the servers, `false` on the laptops.
      '';
    };

    disks = mkOption {
      type = types.attrsOf diskType;
      default = { };
      example = literalExpression ''
        {
          main = { device = "/dev/sda"; size = "458G"; biosBoot = true; esp = true; };
        }
      '';
      description = ''
        The disks of the host, by name. Each becomes a GPT disk of disko
        (`disko.devices.disk.<name>`), its partitions labelled
        `disk-<name>-<partition>`. Profiles name a single disk `main` and
        the zephyrus pair `primary` and `secondary` (two separate
        filesystems, not RAID1).
      '';
    };

    detection = mkOption {
      type = types.attrsOf types.anything;
      readOnly = true;
      internal = true;
      default = detection;
      description = "Result of the hardware detection on `hardware.facter.report`.";
    };

    activeProfile = mkOption {
      type = types.nullOr (types.enum profileNames);
      readOnly = true;
      default = active;
      defaultText = literalExpression ''if profile == "auto" then detected profile else profile'';
      description = ''
        The profile in effect: `storage.profile`, or the detected one with
        `"auto"` (`null` when detection failed).
      '';
    };
  };

  config = mkIf cfg.enable (mkMerge (
    [
      {
        assertions = [
          {
            assertion = cfg.profile != "auto" || active != null;
            message = ''
              storage.profile = "auto" could not pick a profile: ${detection.detected}${
                lib.optionalString (
                  detection.candidates != [ ]
                ) " (matches: ${lib.concatStringsSep ", " detection.candidates})"
              }. Set storage.profile to one of ${lib.concatStringsSep ", " profileNames}.'';
          }
        ];
      }
      (mkIf (cfg.profile == "auto" && active != null) { storage.disks = detectedDisks; })
    ]
    ++ map (p: mkIf (active == p) { storage = asDefaults (import (./profiles + "/${p}.nix")); }) profileNames
  ));
}
