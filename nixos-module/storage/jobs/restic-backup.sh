#!/usr/bin/env bash
# storage-backup: one nightly offsite backup with restic (0.14 or later).
#   storage-backup [--host NAME] [--price-per-tb USD] [--timeout DURATION] PATH... [-- FORGET-OPTION...]
# The repository and its secrets come from restic's environment, as the
# systemd unit sets it: RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE,
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (the unit's EnvironmentFile),
# RESTIC_CACHE_DIR.
# Steps: create the repository if it has none; remove stale locks (left by a
# killed run; `restic unlock` never removes a live one); back up PATHs;
# `forget --prune` with FORGET-OPTIONs (none: no forgetting); print the
# repository size and what it costs per month at --price-per-tb.
# restic's own messages go to stdout; a failure ends with exactly one line on
# stderr, "storage-backup: <step> failed (exit N): <restic's reason>", and
# restic's exit status (3: some files could not be read, the snapshot was
# still saved). --timeout bounds the backup step (timeout(1) durations:
# 30s, 6h): restic retries an unreachable endpoint for a long time, and a
# backup that cannot finish must fail with a reason, not hang until morning.
set -euo pipefail

me=storage-backup
usage() { echo "usage: $me [--host NAME] [--price-per-tb USD] [--timeout DURATION] PATH... [-- FORGET-OPTION...]" >&2; exit 2; }

host=$(hostname)
price=''
limit=''
paths=()
while [ $# -gt 0 ]; do
  case $1 in
    --host) [ $# -ge 2 ] || usage; host=$2; shift 2 ;;
    --price-per-tb) [ $# -ge 2 ] || usage; price=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || usage; limit=$2; shift 2 ;;
    --) shift; break ;;
    -*) usage ;;
    *) paths+=("$1"); shift ;;
  esac
done
forget=("$@")
[ ${#paths[@]} -gt 0 ] || usage
: "${RESTIC_REPOSITORY:?$me: RESTIC_REPOSITORY is not set}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fail STEP RC: restic's stderr to stdout, then the one-line reason.
fail() {
  local step=$1 rc=$2 reason
  sed 's/^/restic: /' "$tmp/err"
  reason=$(grep -E '^Fatal: ' "$tmp/err" | tail -n1 || true)
  [ -n "$reason" ] || reason=$(grep -vE '^[[:space:]]*$' "$tmp/err" | tail -n1 || true)
  reason=${reason#Fatal: }
  echo "$me: $step failed (exit $rc): ${reason:-no message from restic} [$RESTIC_REPOSITORY]" >&2
  exit "$rc"
}
run() { # run STEP restic-args...: stdout to $tmp/out, stderr to $tmp/err
  local step=$1 rc=0
  shift
  restic "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 0 ] || fail "$step" "$rc"
}

if ! restic cat config >/dev/null 2>"$tmp/err"; then
  cp "$tmp/err" "$tmp/err.config"
  if restic init >"$tmp/out" 2>"$tmp/err"; then
    echo "$me: created the repository $RESTIC_REPOSITORY"
  else
    rc=$?
    # The reason `cat config` gave is the one that matters (credentials,
    # endpoint), unless it is merely that there is no repository yet.
    grep -q 'Fatal: ' "$tmp/err.config" && ! grep -qiE 'does not exist|no such|not found' "$tmp/err.config" &&
      cp "$tmp/err.config" "$tmp/err"
    fail "opening the repository" "$rc"
  fi
fi

run "removing stale locks" unlock

rc=0
bounded=()
# --foreground: timeout signals restic alone and reaps it. Without it,
# timeout KILLs its whole process group, itself included, and the orphaned
# restic can stay a zombie where PID 1 does not reap: its lock then looks
# alive to the next run's `restic unlock`.
[ -z "$limit" ] || bounded=(timeout --foreground --signal=INT --kill-after=30s "$limit")
# In a subshell that is not replaced by the command (the `exit` after it):
# when timeout has to KILL restic, the shell's own "Killed" notice goes to
# /dev/null, not into our one-line error contract.
(
  "${bounded[@]}" restic backup --json --host "$host" "${paths[@]}" >"$tmp/out" 2>"$tmp/err"
  exit $?
) 2>/dev/null || rc=$?
# 124: timed out; 137: restic ignored the interrupt and was killed.
if { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && [ -n "$limit" ]; then
  echo "Fatal: restic did not finish within $limit (is the endpoint reachable?)" >>"$tmp/err"
fi
summary=$(grep '"message_type":"summary"' "$tmp/out" | tail -n1 || true)
if [ -z "$summary" ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; }; then
  [ "$rc" -ne 0 ] || rc=1
  fail backup "$rc"
fi
id=$(jq -r .snapshot_id <<<"$summary")
parent=$(restic cat snapshot "$id" 2>/dev/null | jq -r '.parent // "none"' || echo unknown)
jq -r --arg p "${parent:0:8}" '"storage-backup: snapshot \(.snapshot_id[0:8]) (parent \($p)): files new \(.files_new), changed \(.files_changed), unmodified \(.files_unmodified); \(.data_added) bytes added; \(.total_duration | floor) s"' <<<"$summary"
backup_rc=$rc

if [ ${#forget[@]} -gt 0 ]; then
  run "forget --prune" forget --prune --host "$host" "${forget[@]}"
  removed=$(sed -n 's/^remove \([0-9]*\) snapshots*:.*/\1/p' "$tmp/out" | awk '{ n += $1 } END { print n + 0 }')
  echo "$me: forget --prune ${forget[*]}: $removed snapshots removed"
fi

if [ -n "$price" ]; then
  run "repository size" stats --json --mode raw-data
  awk -v b="$(jq -r .total_size "$tmp/out")" -v p="$price" -v me="$me" \
    'BEGIN { printf "%s: repository holds %.2f GB, about $%.2f a month at $%s per TB\n", me, b / 1e9, b / 1e12 * p, p }'
fi

if [ "$backup_rc" -ne 0 ]; then
  sed 's/^/restic: /' "$tmp/err"
  echo "$me: backup incomplete (exit $backup_rc): some files could not be read; snapshot $id saved without them" >&2
  exit "$backup_rc"
fi
