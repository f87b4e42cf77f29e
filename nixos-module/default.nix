# NixOS module of root-rotate: `storage.impermanence.*` and `storage.*`
# (host profiles, ./storage/).
# Exposed as `nixosModules.default` by ../flake.nix; importable by path too.
{
  imports = [
    ./impermanence.nix
    ./persistence.nix
    ./storage
  ];
}
