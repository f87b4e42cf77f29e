# storage.btrfs.*: subvolumes, their mount options, NOCOW and its checks.
# The subvolumes themselves are created by the disko layout (./layout.nix).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    types
    literalExpression
    ;

  top = config.storage;
  cfg = config.storage.btrfs;
  L = import ./lib.nix { inherit lib; } top;

  subvolumeType = types.submodule (
    { name, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether to create (and, with a mount point, mount) this subvolume.";
        };
        disk = mkOption {
          type = types.str;
          default = "main";
          example = "secondary";
          description = "Name of the `storage.disks` entry whose Btrfs filesystem holds this subvolume.";
        };
        mountpoint = mkOption {
          type = types.nullOr (types.strMatching "/[^[:space:]]*");
          default = null;
          example = "/var/lib/postgresql";
          description = ''
            Where to mount it, or `null` to create it without a mount
            (`@snapshots`, `@old_roots`: tools mount them on demand).
          '';
        };
        mountOptions = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "nodev" "nosuid" ];
          description = ''
            Extra mount options, appended to the generated ones: `noatime`,
            `ssd` and `discard=async` with `storage.btrfs.ssdOptimization`,
            `space_cache=v2`, `compress=zstd:N` unless NOCOW, `nofail` on a
            `nofail` disk, and `subvol=` (from disko). `nodatacow` and
            `nodatasum` are refused: they act on the whole filesystem, use
            `nocow` instead.
          '';
        };
        compression = mkOption {
          type = types.nullOr (types.ints.between 1 15);
          default = null;
          example = 1;
          description = ''
            zstd level on this subvolume's fstab line instead of its disk's
            `compression`. Btrfs only honours the level of the first mount of
            the filesystem, so this documents intent; to really compress a
            directory differently use `btrfs property set <dir> compression`.
          '';
        };
        nocow = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Disable copy-on-write for new files: `chattr +C` on the empty
            subvolume when disko creates it, and a tmpfiles `h` line that
            re-applies `+C` to the mount point at every boot. NOCOW files
            have no checksums and no compression; meant for databases and
            container images, never for `@nix`.
          '';
        };
        neededForBoot = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Mount in stage 1 (`fileSystems.<mountpoint>.neededForBoot`), for
            state the boot itself needs: `/persist` on an impermanent root,
            `/var/log` for the journal of early boot.
          '';
        };
        database = mkOption {
          type = types.bool;
          default = builtins.elem name [
            "@postgresql"
            "@redis"
          ];
          defaultText = literalExpression ''builtins.elem name [ "@postgresql" "@redis" ]'';
          description = "Holds a database: `storage.btrfs.enforceDatabaseNodatacow` applies.";
        };
      };
    }
  );

  enabled = L.enabledSubvolumes;
  nocowMounted = lib.filterAttrs (_: sv: sv.nocow && sv.mountpoint != null) enabled;
  cowDatabases = lib.attrNames (lib.filterAttrs (_: sv: sv.database && !sv.nocow) enabled);
  forbidden = [
    "nodatacow"
    "nodatasum"
    "datacow"
  ];
  badOptions = lib.filterAttrs (_: sv: lib.any (o: builtins.elem o forbidden) sv.mountOptions) enabled;

  nocowCheck = pkgs.writeShellApplication {
    name = "storage-nocow-check";
    runtimeInputs = [ pkgs.e2fsprogs ];
    text = builtins.readFile ./jobs/nocow-check.sh;
  };
in
{
  options.storage.btrfs = {
    ssdOptimization = mkEnableOption ''
      the SSD mount options `ssd` and `discard=async` (asynchronous TRIM of
      freed extents, in addition to the weekly fstrim)'';

    subvolumes = mkOption {
      type = types.attrsOf subvolumeType;
      default = { };
      example = literalExpression ''
        {
          "@postgresql" = { mountpoint = "/var/lib/postgresql"; nocow = true; };
          "@dev" = { mountpoint = "/home/dev/src"; compression = 1; };
          "@redis".enable = false;
        }
      '';
      description = ''
        Btrfs subvolumes by name. The profile supplies its set as defaults;
        add entries, or change or disable (`enable = false`) the profile's.
      '';
    };

    enforceDatabaseNodatacow = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Fail evaluation when a database subvolume (`database = true`, by
        default `@postgresql` and `@redis`) does not have `nocow = true`.
        When `false`, such a subvolume is a warning instead. Either way a
        boot-time check (`storage-nocow-check.service`) logs a warning for
        every NOCOW mount point whose directory lacks the `C` attribute on
        disk.
      '';
    };
  };

  config = mkIf top.enable {
    assertions = [
      {
        assertion = !cfg.enforceDatabaseNodatacow || cowDatabases == [ ];
        message = ''
          storage.btrfs: database subvolume(s) ${lib.concatStringsSep ", " cowDatabases} without nocow = true. Copy-on-write fragments database files that are rewritten in place; set storage.btrfs.subvolumes."<name>".nocow = true (or storage.btrfs.enforceDatabaseNodatacow = false to accept it with a warning).'';
      }
      {
        assertion = badOptions == { };
        message = ''
          storage.btrfs: subvolume(s) ${lib.concatStringsSep ", " (lib.attrNames badOptions)} have nodatacow/nodatasum/datacow in mountOptions. Btrfs applies these to the whole filesystem from its first mount, never per subvolume; use storage.btrfs.subvolumes."<name>".nocow = true (chattr +C) instead.'';
      }
    ]
    ++ lib.mapAttrsToList (n: sv: {
      assertion = top.disks ? ${sv.disk};
      message = ''storage.btrfs.subvolumes."${n}".disk = "${sv.disk}", but storage.disks has no such disk (it has: ${lib.concatStringsSep ", " (lib.attrNames top.disks)}).'';
    }) enabled
    ++ lib.mapAttrsToList (n: sv: {
      assertion = !(sv.neededForBoot && (top.disks.${sv.disk}.nofail or false));
      message = ''storage.btrfs.subvolumes."${n}": neededForBoot on the nofail disk "${sv.disk}"; stage 1 would wait for a disk that is allowed to be missing.'';
    }) enabled
    ++ lib.mapAttrsToList (n: sv: {
      assertion = sv.neededForBoot -> sv.mountpoint != null;
      message = ''storage.btrfs.subvolumes."${n}": neededForBoot needs a mountpoint.'';
    }) enabled;

    warnings = lib.optional (!cfg.enforceDatabaseNodatacow && cowDatabases != [ ]) ''
      storage.btrfs: database subvolume(s) ${lib.concatStringsSep ", " cowDatabases} are copy-on-write (nocow = false); expect fragmentation and write amplification under database load.'';

    # Second line of defence after disko's postCreateHook: `h` sets the
    # attribute on the mount point at every boot; new files inherit it.
    systemd.tmpfiles.rules = lib.mapAttrsToList (_: sv: "h ${sv.mountpoint} - - - - +C") nocowMounted;

    fileSystems = lib.mapAttrs' (_: sv: lib.nameValuePair sv.mountpoint { neededForBoot = true; }) (
      lib.filterAttrs (_: sv: sv.neededForBoot) enabled
    );

    systemd.services.storage-nocow-check = mkIf (nocowMounted != { }) {
      description = "Check that NOCOW subvolumes carry the C attribute";
      wantedBy = [ "multi-user.target" ];
      after = [
        "local-fs.target"
        "systemd-tmpfiles-setup.service"
      ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${nocowCheck}/bin/storage-nocow-check ${
          lib.concatMapStringsSep " " (sv: lib.escapeShellArg sv.mountpoint) (lib.attrValues nocowMounted)
        }";
      };
    };
  };
}
