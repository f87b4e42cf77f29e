# Real NixOS evaluation for the eval tests, from source trees (no flake, no
# fetching): nixpkgs, disko, impermanence and preservation checkouts.
#
# Debian's Nix 2.8 cannot `import <nixpkgs>` (nixpkgs' minimum-version gate),
# so `pkgs` is built through pkgs/top-level/impure.nix, which has no gate,
# and handed to eval-config.nix as `nixpkgs.pkgs`. The overlay replaces
# shellcheck-minimal and shellcheck (built with GHC) by a no-op, the way nixpkgs itself
# skips the check where GHC is unavailable: trees without the Haskell package
# set still evaluate `writeShellApplication`. Evaluation only; nothing here
# is built.
{
  nixpkgs,
  disko,
  impermanence,
  preservation,
}:
rec {
  system = "x86_64-linux";

  noHaskellShellcheck =
    final: _prev:
    let
      stub = (final.writeShellScriptBin "shellcheck" "exit 0") // {
        compiler.bootstrapAvailable = false;
      };
    in
    {
      shellcheck-minimal = stub;
      # The flake's devShell lists the full shellcheck, Haskell too.
      shellcheck = stub;
    };

  pkgs = import (nixpkgs + "/pkgs/top-level/impure.nix") {
    localSystem = { inherit system; };
    config = { };
    overlays = [ noHaskellShellcheck ];
  };
  lib = pkgs.lib;

  persistenceModules = {
    impermanence = impermanence + "/nixos.nix";
    preservation = preservation + "/module.nix";
  };

  # A full NixOS system: disko's module, our module, then `modules`.
  evalSystem =
    modules:
    import (nixpkgs + "/nixos/lib/eval-config.nix") {
      system = null;
      inherit pkgs;
      modules = [
        (disko + "/module.nix")
        ../default.nix
      ]
      ++ modules;
    };

  # The example hosts, as the flake builds them (../../flake.nix, mkHost).
  exampleHost =
    {
      name,
      systemdInitrd,
      persistence,
      extra ? [ ],
    }:
    evalSystem (
      [
        persistenceModules.${persistence}
        (../../examples + "/${name}/configuration.nix")
        { boot.initrd.systemd.enable = systemdInitrd; }
      ]
      ++ extra
    );

  # A minimal host on storage PROFILE (boot loader by kind), plus modules.
  hostWith =
    profile: extra:
    (evalSystem (
      [
        {
          system.stateVersion = "26.05";
          boot.loader.grub.enable = !(builtins.elem profile [ "zephyrus" "yoga" ]);
          boot.loader.systemd-boot.enable = builtins.elem profile [ "zephyrus" "yoga" ];
          storage = {
            enable = true;
            inherit profile;
          };
        }
      ]
      ++ extra
    )).config;

  failedAssertions = config: map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
}
