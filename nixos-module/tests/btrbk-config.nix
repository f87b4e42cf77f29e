# The btrbk configuration NixOS renders for a host with `storage.profile =
# <profile>` (nixpkgs' btrbk module: /etc/btrbk/storage.conf), for
# ../storage/jobs/btrbk-test. Real NixOS evaluation through ./nixos.nix.
{
  nixpkgs,
  disko,
  impermanence,
  preservation,
  profile,
}:
let
  nixos = import ./nixos.nix { inherit nixpkgs disko impermanence preservation; };
  laptop = profile == "zephyrus" || profile == "yoga";
  c =
    (nixos.evalSystem [
      {
        system.stateVersion = "26.05";
        boot.loader.grub.enable = !laptop;
        boot.loader.systemd-boot.enable = laptop;
        storage = {
          enable = true;
          inherit profile;
        };
      }
    ]).config;
in
c.environment.etc."btrbk/storage.conf".source.text
