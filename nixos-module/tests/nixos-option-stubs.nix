# THE ONLY STUBS the eval tests use: minimal declarations of NixOS options that
# live outside this project, so lib.evalModules can evaluate our module with
# nixpkgs' lib alone (no nixpkgs, no pkgs). Types follow nixpkgs where cheap;
# anything we only read back is freeform. Real NixOS is checked by the flake's
# checks (example toplevels, VM tests) in Nix CI, not here.
{ lib }:
let
  inherit (lib) mkOption types;
  lines = mkOption {
    type = types.lines;
    default = "";
  };
  strList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  # Unit submodule: the list options we set, everything else freeform.
  unit = types.submodule {
    freeformType = types.attrsOf types.anything;
    options = {
      wantedBy = strList;
      requiredBy = strList;
      requires = strList;
      wants = strList;
      after = strList;
      before = strList;
      conflicts = strList;
      unitConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
      serviceConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
      timerConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
    };
  };
  units = mkOption {
    type = types.attrsOf unit;
    default = { };
  };

  # nixpkgs nixos/lib/utils.nix escapeSystemdPath, re-implemented for tests
  # (checked against `systemd-escape -p`): "/" -> "-", and every character
  # outside [A-Za-z0-9:_.] (plus a leading ".") -> \xNN.
  utils = {
    escapeSystemdPath =
      s:
      let
        trimmed = lib.removeSuffix "/" (lib.removePrefix "/" s);
        ok = c: builtins.match "[A-Za-z0-9:_./]" c != null;
        esc =
          i: c:
          if c == "/" then
            "-"
          else if ok c && !(i == 0 && c == ".") then
            c
          else
            "\\x" + lib.toLower (lib.toHexString (lib.strings.charToInt c));
      in
      if s == "/" then "-" else lib.concatStrings (lib.imap0 esc (lib.stringToCharacters trimmed));
  };
in
{
  inherit utils;

  # Options every NixOS system has, as far as our module touches them.
  nixos = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = strList;
      fileSystems = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule (
            { name, ... }:
            {
              options = {
                mountPoint = mkOption {
                  type = types.str;
                  default = name;
                };
                device = mkOption {
                  type = types.nullOr types.str;
                  default = null;
                };
                fsType = mkOption {
                  type = types.str;
                  default = "auto";
                };
                options = mkOption {
                  type = types.nonEmptyListOf types.nonEmptyStr;
                  default = [ "defaults" ];
                };
                neededForBoot = mkOption {
                  type = types.bool;
                  default = false;
                };
              };
            }
          )
        );
      };
      swapDevices = mkOption {
        type = types.listOf (types.attrsOf types.anything);
        default = [ ];
      };
      boot.resumeDevice = mkOption {
        type = types.str;
        default = "";
      };
      boot.loader.grub.devices = strList;
      boot.initrd = {
        systemd.enable = mkOption {
          type = types.bool;
          default = false;
        };
        systemd.services = units;
        systemd.storePaths = mkOption {
          type = types.listOf (types.either types.str (types.attrsOf types.anything));
          default = [ ];
        };
        systemd.extraBin = mkOption {
          type = types.attrsOf types.path;
          default = { };
        };
        extraUtilsCommands = lines;
        extraUtilsCommandsTest = lines;
        postDeviceCommands = lines;
        postResumeCommands = lines;
      };
      systemd.services = units;
      systemd.timers = units;
      systemd.suppressedSystemUnits = strList;
      systemd.tmpfiles.rules = strList;
      environment.systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      services.openssh = {
        enable = mkOption {
          type = types.bool;
          default = false;
        };
        hostKeys = mkOption {
          type = types.listOf (types.attrsOf types.anything);
          default = [
            {
              type = "rsa";
              bits = 4096;
              path = "/etc/ssh/ssh_host_rsa_key";
            }
            {
              type = "ed25519";
              path = "/etc/ssh/ssh_host_ed25519_key";
            }
          ];
        };
      };
    };
    config._module.args = {
      inherit utils;
      pkgs = throw "eval tests have no pkgs: set storage.impermanence.package";
    };
  };

  # disko's NixOS module, reduced to what it does with a layout: the real
  # diskoLib.toplevel type, and its _config mapped onto NixOS options the
  # way disko's module.nix does.
  disko =
    diskoLib:
    { config, ... }:
    {
      options.disko.devices = mkOption {
        type = diskoLib.toplevel;
        default = { };
      };
      config = {
        fileSystems = config.disko.devices._config.fileSystems or { };
        boot = config.disko.devices._config.boot or { };
        swapDevices = config.disko.devices._config.swapDevices or [ ];
      };
    };

  # Stand-ins for the two persistence modules' top-level options.
  impermanence.options.environment.persistence = mkOption {
    type = types.attrsOf (types.attrsOf types.anything);
    default = { };
  };
  preservation.options.preservation = {
    enable = mkOption {
      type = types.bool;
      default = false;
    };
    preserveAt = mkOption {
      type = types.attrsOf (types.attrsOf types.anything);
      default = { };
    };
  };
}
