#!/usr/bin/env bash
# storage-backup-check: weekly verification of the offsite repository.
#   storage-backup-check PARTS
# Reads one PARTS-th of the pack files back (`restic check
# --read-data-subset=K/PARTS`, K from the ISO week number, so PARTS weeks
# read every pack once) after removing stale locks. Environment as for
# storage-backup. Exit 0, or restic's status with one line on stderr.
set -euo pipefail

me=storage-backup-check
if [ $# -ne 1 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then echo "usage: $me PARTS" >&2; exit 2; fi
parts=$1
week=$(date +%V)
k=$((10#$week % parts + 1))

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() {
  local name=$1 rc=0 reason
  shift
  restic "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 0 ] && return 0
  sed 's/^/restic: /' "$tmp/out" "$tmp/err"
  reason=$(grep -hE '^Fatal: ' "$tmp/err" | tail -n1 || true)
  [ -n "$reason" ] || reason=$(grep -hvE '^[[:space:]]*$' "$tmp/out" "$tmp/err" | tail -n1 || true)
  echo "$me: $name failed (exit $rc): ${reason#Fatal: } [${RESTIC_REPOSITORY:-}]" >&2
  exit "$rc"
}
step "removing stale locks" unlock
step "check --read-data-subset=$k/$parts" check --read-data-subset="$k/$parts"
echo "$me: repository ${RESTIC_REPOSITORY:-} is sound; pack files subset $k/$parts read back"
