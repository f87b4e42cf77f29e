# Shared by the five example hosts: nightly offsite backups to one Backblaze
# B2 bucket, one restic repository per host (<bucket>/<hostname>), the
# restore drill that proves them, and their metrics (node_exporter on
# 127.0.0.1:9100, `storage status`). The secrets are files written at run
# time (OpNix/1Password, sops-nix): only their paths are in the
# configuration, never their contents. docs/how-to/backups.md,
# docs/reference/monitoring.md.
{
  storage.monitoring.enable = true;
  storage.backup = {
    enable = true;
    b2 = {
      bucket = "acme-backups"; # REPLACE
      region = "eu-central-003"; # REPLACE
      credentialsFile = "/run/secrets/b2-credentials"; # AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=…
      passwordFile = "/run/secrets/restic-password";
    };
  };
}
