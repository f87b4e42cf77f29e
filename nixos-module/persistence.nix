# Persistence for storage.impermanence: hand paths to nix-community/impermanence
# (environment.persistence) or nix-community/preservation (preservation.*).
# Neither is reimplemented here; this module only fills in their options.
#
# Setting an option nobody declared is an error even under mkIf false, and
# deciding *whether* to set it from config values recurses infinitely. So the
# shape of `config` depends only on `options` (declarations), never on config:
# `options ? environment.persistence` is true only when impermanence's module
# is imported.
{
  config,
  lib,
  options,
  ...
}:
let
  inherit (lib) mkOption mkIf types;

  top = config.storage.impermanence;
  cfg = top.persistence;

  hasImpermanence = options ? environment && options.environment ? persistence;
  hasPreservation = options ? preservation && options.preservation ? preserveAt;

  mnt = top.persistentMount;
  active = backend: top.enable && cfg.backend == backend && mnt != null;

  hostKeyFiles = lib.optionals config.services.openssh.enable (
    lib.concatMap (k: [
      k.path
      "${k.path}.pub"
    ]) config.services.openssh.hostKeys
  );

  pathEntry = types.either types.str (types.attrsOf types.anything);
in
{
  options.storage.impermanence.persistence = {
    backend = mkOption {
      type = types.nullOr (
        types.enum [
          "impermanence"
          "preservation"
        ]
      );
      default =
        if hasImpermanence then
          "impermanence"
        else if hasPreservation then
          "preservation"
        else
          null;
      defaultText = lib.literalMD ''
        `"impermanence"` if its NixOS module is imported, else `"preservation"`
        if that one is, else `null`
      '';
      example = "preservation";
      description = ''
        Which persistence module receives the paths below. Its NixOS module
        must be imported (`impermanence.nixosModules.impermanence` or
        `preservation.nixosModules.default`); an assertion says so otherwise.
        `null`: this module configures no persistence; declare it yourself.
        preservation needs systemd stage 1.
      '';
    };

    serverDefaults = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Persist the minimal server set: `/etc/machine-id`, the OpenSSH host
        keys from `services.openssh.hostKeys` (and their `.pub`),
        `/var/lib/nixos` (uid/gid map) and `/var/lib/systemd` (timers,
        random seed). With preservation, machine-id and `/var/lib/nixos` are
        set up in the initrd, `systemd-machine-id-commit.service` is
        suppressed, and the host keys are symlinks into the persistent
        directory (`how = "symlink"; configureParent = true;`), as
        preservation's documentation recommends.
      '';
    };

    directories = mkOption {
      type = types.listOf pathEntry;
      default = [ ];
      example = [
        "/var/lib/acme"
        {
          directory = "/var/lib/postgresql";
          user = "postgres";
          group = "postgres";
          mode = "0750";
        }
      ];
      description = ''
        Extra directories to persist, passed unchanged to the backend's
        `directories` list under `persistentMount`. Strings work with both
        backends; attribute sets must use keys the chosen backend accepts.
      '';
    };

    files = mkOption {
      type = types.listOf pathEntry;
      default = [ ];
      example = [ "/etc/adjtime" ];
      description = ''
        Extra files to persist, passed unchanged to the backend's `files` list
        under `persistentMount`.
      '';
    };
  };

  config = lib.mkMerge [
    {
      assertions = lib.optionals top.enable [
        {
          assertion = cfg.backend != "impermanence" || hasImpermanence;
          message = "storage.impermanence: set imports = [ impermanence.nixosModules.impermanence ] (persistence.backend = \"impermanence\").";
        }
        {
          assertion = cfg.backend != "preservation" || hasPreservation;
          message = "storage.impermanence: set imports = [ preservation.nixosModules.default ] (persistence.backend = \"preservation\").";
        }
        {
          assertion = cfg.backend != "preservation" || config.boot.initrd.systemd.enable;
          message = "storage.impermanence: set boot.initrd.systemd.enable = true (preservation needs systemd stage 1), or use persistence.backend = \"impermanence\".";
        }
        {
          assertion = cfg.backend == null || mnt != null;
          message = "storage.impermanence: set storage.impermanence.persistentMount (persistence.backend is set but there is no persistent mount).";
        }
      ];
      systemd.suppressedSystemUnits = mkIf (active "preservation" && cfg.serverDefaults) [
        "systemd-machine-id-commit.service"
      ];
    }

    (lib.optionalAttrs hasImpermanence {
      environment.persistence = mkIf (active "impermanence") {
        ${mnt} = {
          hideMounts = true;
          directories =
            lib.optionals cfg.serverDefaults [
              "/var/lib/nixos"
              "/var/lib/systemd"
            ]
            ++ cfg.directories;
          files = lib.optionals cfg.serverDefaults ([ "/etc/machine-id" ] ++ hostKeyFiles) ++ cfg.files;
        };
      };
    })

    (lib.optionalAttrs hasPreservation {
      preservation = mkIf (active "preservation") {
        enable = true;
        preserveAt.${mnt} = {
          directories =
            lib.optionals cfg.serverDefaults [
              {
                directory = "/var/lib/nixos";
                inInitrd = true;
              }
              "/var/lib/systemd"
            ]
            ++ cfg.directories;
          files =
            lib.optionals cfg.serverDefaults (
              [
                {
                  file = "/etc/machine-id";
                  inInitrd = true;
                }
              ]
              # Symlinks, as preservation documents for host keys. A bind
              # mount would put an empty file at the key's path, and
              # sshd-keygen's `rm -f` of a mount point fails (EBUSY), so the
              # first boot would have no host keys. sshd-keygen keeps a
              # symlink and ssh-keygen writes through it into the persistent
              # directory, which configureParent creates.
              ++ map (f: {
                file = f;
                how = "symlink";
                configureParent = true;
              }) hostKeyFiles
            )
            ++ cfg.files;
        };
      };
    })
  ];
}
