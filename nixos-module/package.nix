# root-rotate, built by Nix. The flake calls this with pkgs.pkgsStatic so the
# binary can be copied into either initrd flavour without its libraries.
# Only Nix CI builds this; see docs/testing.md.
{
  lib,
  rustPlatform,
  pkg-config,
  btrfs-progs,
  # Cargo features, e.g. [ "fault-injection" ] for the crash tests (vm-tests/).
  features ? [ ],
}:
# No formal argument may share a name with a top-level package: callPackage
# fills it from pkgs before its default applies (pkgs.src, for one, is a
# throwing alias in current nixpkgs). The source is therefore fixed here;
# use overrideAttrs to build another tree.
let
  # Only what cargo reads, so editing docs or tests does not rebuild, and a
  # local target/ directory never enters the store.
  # (cleanSourceWith rather than lib.fileset, which needs Nix >= 2.14.)
  root = toString ../.;
  src = lib.cleanSourceWith {
    name = "root-rotate-source";
    src = ../.;
    filter =
      path: _type:
      let
        rel = lib.removePrefix "${root}/" (toString path);
      in
      builtins.elem rel [
        "Cargo.toml"
        "Cargo.lock"
        "build.rs"
        "src"
      ]
      || lib.hasPrefix "src/" rel;
  };
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "root-rotate";
  inherit (cargoToml.package) version;
  inherit src;
  cargoLock.lockFile = ../Cargo.lock;

  buildFeatures = features;

  # bindgenHook sets LIBCLANG_PATH and the clang include flags that the
  # libbtrfsutil crate's bindgen build needs.
  nativeBuildInputs = [
    pkg-config
    rustPlatform.bindgenHook
  ];
  # libbtrfsutil ships with btrfs-progs. libudev is not needed by libbtrfsutil
  # and does not link statically, so leave it out.
  buildInputs = [
    (btrfs-progs.override {
      udevSupport = false;
      udev = null;
    })
  ];

  # The crate's tests need root and a Btrfs filesystem; the VM tests run them.
  doCheck = false;

  meta = {
    description = "Archive the Btrfs root subvolume at boot and prune old archives";
    mainProgram = "root-rotate";
    platforms = lib.platforms.linux;
  };
}
