# storage.profile = "auto" end to end: a nixos-facter report (./facter/) read
# through nixpkgs' hardware.facter.reportPath picks the profile and the disk
# devices in a real NixOS evaluation; an ambiguous report stops evaluation
# with an assertion that says what was found. (detect.nix's rules alone are
# in ./cases-detect.nix.)
{ nixos, disko }:
let
  inherit (nixos) lib failedAssertions;
  autoHost =
    report: laptop:
    (nixos.evalSystem [
      {
        system.stateVersion = "26.05";
        boot.loader.grub.enable = !laptop;
        boot.loader.systemd-boot.enable = laptop;
        hardware.facter.reportPath = ./facter + "/${report}.json";
        storage = {
          enable = true;
          profile = "auto";
        };
      }
    ]).config;
  view = c: {
    profile = c.storage.activeProfile;
    disks = lib.mapAttrs (_: d: d.device) c.storage.disks;
    failed = failedAssertions c;
    toplevel = lib.hasSuffix ".drv" c.system.build.toplevel.drvPath;
  };
  detected = report: (import ../storage/detect.nix { inherit lib; }) (lib.importJSON (./facter + "/${report}.json"));
in
{
  testAutoDetectHetzner = {
    expr = view (autoHost "hetzner" false);
    expected = {
      profile = "hetzner";
      disks.main = builtins.head (detected "hetzner").disks;
      failed = [ ];
      toplevel = true;
    };
  };

  testAutoDetectZephyrusTwoDisks = {
    expr = view (autoHost "zephyrus" true);
    expected = {
      profile = "zephyrus";
      disks = {
        primary = builtins.elemAt (detected "zephyrus").disks 0;
        secondary = builtins.elemAt (detected "zephyrus").disks 1;
      };
      failed = [ ];
      toplevel = true;
    };
  };

  testAutoDetectAmbiguousAsksForTheProfile = {
    expr =
      let
        c = autoHost "ambiguous-laptop-3nvme" true;
      in
      map (m: lib.hasInfix "storage.profile" m && lib.hasInfix (detected "ambiguous-laptop-3nvme").detected m) (
        builtins.filter (lib.hasPrefix "storage") (failedAssertions c)
      );
    expected = [ true ];
  };
}
