# The restic unit storage.backup renders for the hetzner profile (real NixOS
# evaluation), as JSON for ../storage/jobs/restic-test: repository and
# environment, EnvironmentFile, the runner's ExecStart, the snapshot-source
# commands. Bucket acme-backups in eu-central-003; the test maps the B2 host
# to its local S3 endpoint.
{ nixpkgs, disko, impermanence, preservation }:
let
  nixos = import ./nixos.nix { inherit nixpkgs disko impermanence preservation; };
  c = nixos.hostWith "hetzner" [
    {
      networking.hostName = "hetzner";
      storage.backup = {
        enable = true;
        b2 = {
          bucket = "acme-backups";
          region = "eu-central-003";
          credentialsFile = "/run/secrets/b2-credentials";
          passwordFile = "/run/secrets/restic-password";
        };
      };
    }
  ];
  s = c.systemd.services.restic-backups-storage;
in
{
  env = nixos.lib.filterAttrs (n: v: n != "PATH" && v != null) s.environment;
  envFile = s.serviceConfig.EnvironmentFile;
  execStart = s.serviceConfig.ExecStart;
  prepare = c.services.restic.backups.storage.backupPrepareCommand;
}
