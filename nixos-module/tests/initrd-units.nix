# root-rotate.service as NixOS renders it for systemd stage 1, per
# `onFailure`, from the example host. vm-tests/systemd-initrd boots these
# exact texts under real systemd; the eval test `testInitrdUnitFixture`
# fails when the committed copy (vm-tests/systemd-initrd/rendered-units.json)
# no longer matches. Regenerate it with nixos-module/tests/render-initrd-units.
#
# The package is a fixed placeholder so the text does not change with every
# edit of the Rust sources; the VM test maps the ExecStart store path to the
# binary in its image anyway.
{ nixos }:
let
  placeholderPackage = {
    type = "derivation";
    name = "root-rotate";
    outPath = "/nix/store/00000000000000000000000000000000-root-rotate";
  };
  render =
    onFailure:
    let
      c =
        (nixos.exampleHost {
          name = "hetzner-vps";
          systemdInitrd = true;
          persistence = "impermanence";
          extra = [
            {
              storage.impermanence = {
                package = placeholderPackage;
                onFailure = nixos.lib.mkForce onFailure;
              };
            }
          ];
        }).config;
      s = c.boot.initrd.systemd.services.root-rotate;
    in
    {
      unit = c.boot.initrd.systemd.units."root-rotate.service".text;
      inherit (s) wantedBy requiredBy;
      exe = "${placeholderPackage}/bin/root-rotate";
    };
in
{
  continue = render "continue";
  fail = render "fail";
}
