{
  description = "root-rotate: archive the Btrfs root subvolume at every boot (NixOS impermanence)";

  # No flake.lock is committed yet: run `nix flake lock` on a machine with
  # Nix >= 2.18 and network access, and commit the result.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    disko = {
      url = "github:nix-community/disko";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    impermanence.url = "github:nix-community/impermanence";
    preservation.url = "github:nix-community/preservation";
  };

  outputs =
    {
      self,
      nixpkgs,
      disko,
      impermanence,
      preservation,
    }:
    let
      system = "x86_64-linux";
      inherit (nixpkgs) lib;
      pkgs = nixpkgs.legacyPackages.${system};

      # Static (musl) build: copied into either initrd without libraries.
      rootRotate =
        features: pkgs.pkgsStatic.callPackage ./nixos-module/package.nix { inherit features; };

      # The persistence backend is whichever of the two modules is imported.
      mkHost =
        {
          systemdInitrd,
          persistenceModule,
          host ? "hetzner-vps",
        }:
        lib.nixosSystem {
          modules = [
            { nixpkgs.hostPlatform = system; }
            disko.nixosModules.disko
            persistenceModule
            self.nixosModules.default
            (./examples + "/${host}/configuration.nix")
            { boot.initrd.systemd.enable = systemdInitrd; }
          ];
        };

      # VM tests live in vm-tests/nixos/; each is
      # `{ pkgs, self, systemdInitrd }: pkgs.testers.runNixOSTest { ... }`,
      # checked in both initrd flavours.
      vmTests = lib.concatMapAttrs (name: file: {
        "vm-${name}-systemd" = import file {
          inherit pkgs self;
          systemdInitrd = true;
        };
        "vm-${name}-scripted" = import file {
          inherit pkgs self;
          systemdInitrd = false;
        };
      }) {
        persistence = ./vm-tests/nixos/persistence.nix;
        rollback = ./vm-tests/nixos/rollback.nix;
      };

      edition =
        if builtins.pathExists ./Cargo.toml then
          (lib.importTOML ./Cargo.toml).package.edition or "2021"
        else
          "2021";
    in
    {
      packages.${system} = {
        default = rootRotate [ ];
        root-rotate = self.packages.${system}.default;
        # For the crash-point VM tests (docs/reference/cli.md, fault injection).
        fault-injection = rootRotate [ "fault-injection" ];
      };

      # The module's package option defaults to the same static build
      # (pkgs.pkgsStatic.callPackage ./nixos-module/package.nix { }).
      nixosModules.default = ./nixos-module;
      nixosModules.root-rotate = ./nixos-module;

      # import root-rotate.lib.diskoLayouts.impermanentServer { device = "/dev/sda"; }
      lib.diskoLayouts.impermanentServer = import ./nixos-module/disko/impermanent-server.nix;

      # The first example host in both initrd flavours, and with preservation
      # (which needs systemd stage 1) instead of impermanence.
      nixosConfigurations = {
        hetzner-vps = mkHost {
          systemdInitrd = true;
          persistenceModule = impermanence.nixosModules.impermanence;
        };
        hetzner-vps-scripted = mkHost {
          systemdInitrd = false;
          persistenceModule = impermanence.nixosModules.impermanence;
        };
        hetzner-vps-preservation = mkHost {
          systemdInitrd = true;
          persistenceModule = preservation.nixosModules.default;
        };
      }
      # The five hosts of the storage.* profiles (examples/<host>/,
      # docs/reference/storage-profiles.md), systemd stage 1.
      // lib.genAttrs [ "zephyrus" "yoga" "hetzner" "contabo" "ovh" ] (
        host:
        mkHost {
          inherit host;
          systemdInitrd = true;
          persistenceModule = impermanence.nixosModules.impermanence;
        }
      );

      checks.${system} = vmTests // {
        # Same script as outside Nix (real NixOS evaluation of every case);
        # here the source trees are the flake's inputs.
        eval-tests =
          pkgs.runCommand "root-rotate-eval-tests"
            {
              nativeBuildInputs = [
                pkgs.nix
                pkgs.bash
                pkgs.gnused
                pkgs.gnugrep
                pkgs.findutils
              ];
            }
            ''
              set -o pipefail
              export HOME=$TMPDIR NIX_STATE_DIR=$TMPDIR/state NIX_LOG_DIR=$TMPDIR/log NIX_CONF_DIR=$TMPDIR/etc
              NIXPKGS=${nixpkgs} DISKO=${disko} IMPERMANENCE=${impermanence} PRESERVATION=${preservation} \
                bash ${self}/nixos-module/tests/run | tee $out
            '';

        fmt = pkgs.runCommand "root-rotate-fmt" { nativeBuildInputs = [ pkgs.rustfmt ]; } ''
          cd ${self}
          find . -name '*.rs' -not -path './target/*' -print0 \
            | xargs -0 --no-run-if-empty rustfmt --check --edition ${edition}
          touch $out
        '';

        # Dynamic build is enough for lints; vendored deps come from Cargo.lock.
        clippy = (pkgs.callPackage ./nixos-module/package.nix { }).overrideAttrs (old: {
          pname = "root-rotate-clippy";
          nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
          buildPhase = ''
            runHook preBuild
            cargo clippy --offline --all-targets -- -D warnings
            runHook postBuild
          '';
          installPhase = "touch $out";
          doCheck = false;
          doInstallCheck = false;
        });

        # Full system builds of the example: real NixOS evaluates the module
        # (scripted hooks vs systemd stage 1 assertions, stage-1 templating).
        example-systemd = self.nixosConfigurations.hetzner-vps.config.system.build.toplevel;
        example-scripted = self.nixosConfigurations.hetzner-vps-scripted.config.system.build.toplevel;
        example-preservation =
          self.nixosConfigurations.hetzner-vps-preservation.config.system.build.toplevel;

        package = self.packages.${system}.default;
      };

      devShells.${system}.default = pkgs.mkShell {
        packages = [
          pkgs.cargo
          pkgs.rustc
          pkgs.clippy
          pkgs.rustfmt
          pkgs.pkg-config
          pkgs.btrfs-progs
          pkgs.shellcheck
          pkgs.nix
        ];
        # Sets LIBCLANG_PATH and clang flags for the libbtrfsutil bindgen build.
        nativeBuildInputs = [ pkgs.rustPlatform.bindgenHook ];
      };
    };
}
