# Calls ../../flake.nix's `outputs` the way `nix flake check` would, with
# inputs made from source trees instead of fetched flakes, so the outputs
# can be evaluated here with Debian's Nix 2.8 (flakes need >= 2.18 and
# network). Each input is its own flake.nix's outputs plus outPath, with
# one substitution for nixpkgs: `pkgs` comes through pkgs/top-level/impure.nix
# (./nixos.nix), because nixpkgs' default.nix refuses Nix < 2.18. So
# `legacyPackages` is that package set, and `lib.nixosSystem` passes it as
# nixpkgs.pkgs. Everything else is the inputs' and our own code, unchanged.
{
  nixpkgs,
  disko,
  impermanence,
  preservation,
  repo,
  # For the test script: an attribute path of the outputs, dot-separated
  # ("checks.x86_64-linux.fmt"), or null.
  attr ? null,
}:
let
  nixos = import ./nixos.nix { inherit nixpkgs disko impermanence preservation; };
  inherit (nixos) lib pkgs system;

  # A flake as an input: its outputs, evaluated with its own inputs and
  # itself, plus where its source lies.
  callFlake =
    src: inputs:
    let
      self = (import (src + "/flake.nix")).outputs (inputs // { inherit self; }) // {
        outPath = src;
        inherit inputs;
      };
    in
    self;

  realNixpkgs = callFlake nixpkgs { };
  nixpkgsInput = realNixpkgs // {
    legacyPackages.${system} = pkgs;
    lib = realNixpkgs.lib // {
      nixosSystem =
        args: realNixpkgs.lib.nixosSystem (args // { modules = args.modules ++ [ { nixpkgs.pkgs = pkgs; } ]; });
    };
  };
  unused = name: throw "flake-shim: input ${name} is not needed here";

  # Where `self` lies. Nix would copy the tracked tree to the store; here a
  # plain string of the checkout's path stands in for it, so that
  # `"${self}/examples/..."` can be imported without a writable store.
  selfSource = toString repo;
  flake = import (repo + "/flake.nix");
  inputs = {
    nixpkgs = nixpkgsInput;
    disko = callFlake disko { nixpkgs = nixpkgsInput; };
    impermanence = callFlake impermanence {
      nixpkgs = nixpkgsInput;
      home-manager = unused "home-manager";
    };
    preservation = callFlake preservation { };
  };
  self = flake.outputs (inputs // { inherit self; }) // {
    outPath = selfSource;
    inherit inputs;
  };
in
{
  outputs = self;
  # For flakes that use this one (the docs' host flakes): its inputs and itself.
  inputsForUsers = inputs // {
    root-rotate = self;
  };
  # The input names flake.nix declares must be exactly those given here.
  declaredInputs = lib.attrNames flake.inputs;
  at = lib.getAttrFromPath (lib.splitString "." attr) self;
  # Every output that is a derivation, as attribute paths for `at`.
  derivationAttrs = lib.concatLists [
    (map (n: "packages.${system}.${n}") (lib.attrNames self.packages.${system}))
    (map (n: "checks.${system}.${n}") (lib.attrNames self.checks.${system}))
    (map (n: "devShells.${system}.${n}") (lib.attrNames self.devShells.${system}))
    (map (n: "nixosConfigurations.${n}.config.system.build.toplevel") (
      lib.attrNames self.nixosConfigurations
    ))
  ];
}
