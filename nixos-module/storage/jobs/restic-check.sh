#!/usr/bin/env bash
# storage-backup-check: weekly verification of the offsite repository.
#   storage-backup-check [--result FILE] PARTS [--result FILE]
# Reads one PARTS-th of the pack files back (`restic check
# --read-data-subset=K/PARTS`, K from the ISO week number, so PARTS weeks
# read every pack once) after removing stale locks. Environment as for
# storage-backup. Exit 0, or restic's status with one line on stderr.
# --result FILE: the run's record for storage-status (JSON, temp + rename,
# on success and failure):
#   {"job":"backup-check","result":"success"|"failure","started":T,
#    "finished":T,"duration_seconds":N,"exit_code":N,"subset":"K/N",
#    "error":STR|null,"last_success":T|null}
# last_success carries over from the previous FILE.
set -euo pipefail

me=storage-backup-check
usage() { echo "usage: $me [--result FILE] PARTS" >&2; exit 2; }
result='' parts=''
while [ $# -gt 0 ]; do
  case $1 in
    --result) [ $# -ge 2 ] || usage; result=$2; shift 2 ;;
    *)
      if [ -n "$parts" ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then usage; fi
      parts=$1; shift ;;
  esac
done
[ -n "$parts" ] || usage
week=$(date +%V)
k=$((10#$week % parts + 1))
started=$(date +%s)

written=0
write_result() { # write_result success|failure EXIT-CODE [ERROR]
  [ -n "$result" ] || return 0
  local now prev='{}'
  now=$(date +%s)
  [ -r "$result" ] && prev=$(jq -ce 'objects' "$result" 2>/dev/null || echo '{}')
  mkdir -p "$(dirname "$result")"
  jq -n --arg r "$1" --argjson rc "$2" --arg e "${3:-}" --argjson s "$started" --argjson f "$now" \
    --arg subset "$k/$parts" --argjson prev "$prev" \
    '{job: "backup-check", result: $r, started: $s, finished: $f, duration_seconds: ($f - $s),
      exit_code: $rc, subset: $subset, error: (if $e == "" then null else $e end),
      last_success: (if $r == "success" then $f else ($prev.last_success // null) end)}' >"$result.tmp"
  mv -f "$result.tmp" "$result"
  written=1
}
tmp=$(mktemp -d)
finish() {
  local rc=$?
  [ "$written" = 1 ] || [ "$rc" = 0 ] || write_result failure "$rc" "storage-backup-check stopped unexpectedly (exit $rc)" 2>/dev/null || true
  rm -rf "$tmp"
}
trap finish EXIT
step() {
  local name=$1 rc=0 reason
  shift
  restic "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 0 ] && return 0
  sed 's/^/restic: /' "$tmp/out" "$tmp/err"
  reason=$(grep -hE '^Fatal: ' "$tmp/err" | tail -n1 || true)
  [ -n "$reason" ] || reason=$(grep -hvE '^[[:space:]]*$' "$tmp/out" "$tmp/err" | tail -n1 || true)
  write_result failure "$rc" "$name failed: ${reason#Fatal: }"
  echo "$me: $name failed (exit $rc): ${reason#Fatal: } [${RESTIC_REPOSITORY:-}]" >&2
  exit "$rc"
}
step "removing stale locks" unlock
step "check --read-data-subset=$k/$parts" check --read-data-subset="$k/$parts"
write_result success 0
echo "$me: repository ${RESTIC_REPOSITORY:-} is sound; pack files subset $k/$parts read back"
