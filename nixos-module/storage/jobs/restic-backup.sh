#!/usr/bin/env bash
# storage-backup: one nightly offsite backup with restic (0.14 or later).
#   storage-backup [--host NAME] [--price-per-tb USD] [--timeout DURATION]
#                  [--result FILE] PATH... [-- FORGET-OPTION...]
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
# --result FILE: the run's record for storage-status (JSON, temp + rename;
# written on success, incomplete and failure, early failures included):
#   {"job":"backup","result":"success"|"incomplete"|"failure","started":T,
#    "finished":T,"duration_seconds":N,"exit_code":N,"snapshot":ID|null,
#    "added_bytes":N|null,"files_new":N|null,"repository_size_bytes":N|null,
#    "errors":N,"error":STR|null,"last_success":T|null,"failures_total":N}
# last_success and failures_total carry over from the previous FILE
# (failures_total counts failed and incomplete runs). errors: the error
# lines restic printed on stderr during the run: per-file errors (JSON
# "message_type":"error" or "error: " lines), retried transfers ("…
# returned error, retrying …") and a final "Fatal: " line. With --result
# the repository size is read (`restic stats`) even without --price-per-tb.
set -euo pipefail

me=storage-backup
usage() { echo "usage: $me [--host NAME] [--price-per-tb USD] [--timeout DURATION] [--result FILE] PATH... [-- FORGET-OPTION...]" >&2; exit 2; }

host=$(hostname)
price=''
limit=''
result=''
paths=()
while [ $# -gt 0 ]; do
  case $1 in
    --host) [ $# -ge 2 ] || usage; host=$2; shift 2 ;;
    --price-per-tb) [ $# -ge 2 ] || usage; price=$2; shift 2 ;;
    --timeout)
      [ $# -ge 2 ] || usage
      [[ $2 =~ ^[0-9]+(\.[0-9]+)?[smhd]?$ ]] || { echo "$me: --timeout takes a timeout(1) duration such as 90m or 6h, not '$2'" >&2; exit 2; }
      limit=$2; shift 2 ;;
    --result) [ $# -ge 2 ] || usage; result=$2; shift 2 ;;
    --) shift; break ;;
    -*) usage ;;
    *) paths+=("$1"); shift ;;
  esac
done
forget=("$@")
[ ${#paths[@]} -gt 0 ] || usage

started=$(date +%s)
errors=0 id='' summary='' size='' written=0
# write_result success|incomplete|failure EXIT-CODE [ERROR]: the --result file.
write_result() {
  [ -n "$result" ] || return 0
  local now prev='{}'
  now=$(date +%s)
  [ -r "$result" ] && prev=$(jq -ce 'objects' "$result" 2>/dev/null || echo '{}')
  mkdir -p "$(dirname "$result")"
  jq -n --arg r "$1" --argjson rc "$2" --arg e "${3:-}" --argjson s "$started" --argjson f "$now" \
    --arg id "$id" --arg size "$size" --argjson errors "$errors" --argjson prev "$prev" \
    --argjson sum "${summary:-null}" \
    '{job: "backup", result: $r, started: $s, finished: $f, duration_seconds: ($f - $s), exit_code: $rc,
      snapshot: (if $id == "" then null else $id end),
      added_bytes: $sum.data_added, files_new: $sum.files_new,
      repository_size_bytes: (if $size == "" then null else ($size | tonumber) end),
      errors: $errors, error: (if $e == "" then null else $e end),
      last_success: (if $r == "success" then $f else ($prev.last_success // null) end),
      failures_total: (($prev.failures_total // 0) + (if $r == "success" then 0 else 1 end))}' \
    >"$result.tmp"
  mv -f "$result.tmp" "$result"
  written=1
}
tmp=''
finish() {
  local rc=$?
  # An exit no step foresaw (set -e, a signal) still leaves a failed record.
  [ "$written" = 1 ] || [ "$rc" = 0 ] || write_result failure "$rc" "storage-backup stopped unexpectedly (exit $rc)" 2>/dev/null || true
  [ -z "$tmp" ] || rm -rf "$tmp"
}
trap finish EXIT
if [ -z "${RESTIC_REPOSITORY:-}" ]; then
  write_result failure 1 "RESTIC_REPOSITORY is not set"
  echo "$me: RESTIC_REPOSITORY is not set" >&2
  exit 1
fi

tmp=$(mktemp -d)
# count_errors FILE: add the error lines of one restic stderr to $errors.
count_errors() {
  local n
  n=$(grep -cE '"message_type":"error"|^error: |returned error, retrying|^Fatal: ' "$1" || true)
  errors=$((errors + n))
}

# fail STEP RC: restic's stderr to stdout, then the one-line reason.
fail() {
  local step=$1 rc=$2 reason
  sed 's/^/restic: /' "$tmp/err"
  reason=$(grep -E '^Fatal: ' "$tmp/err" | tail -n1 || true)
  [ -n "$reason" ] || reason=$(grep -vE '^[[:space:]]*$' "$tmp/err" | tail -n1 || true)
  reason=${reason#Fatal: }
  write_result failure "$rc" "$step failed: ${reason:-no message from restic}"
  echo "$me: $step failed (exit $rc): ${reason:-no message from restic} [$RESTIC_REPOSITORY]" >&2
  exit "$rc"
}
run() { # run STEP restic-args...: stdout to $tmp/out, stderr to $tmp/err
  local step=$1 rc=0
  shift
  restic "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  count_errors "$tmp/err"
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
    count_errors "$tmp/err"
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
count_errors "$tmp/err"
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
cp "$tmp/err" "$tmp/err.backup" # what could not be read, for the end

if [ ${#forget[@]} -gt 0 ]; then
  run "forget --prune" forget --prune --host "$host" "${forget[@]}"
  removed=$(sed -n 's/^remove \([0-9]*\) snapshots*:.*/\1/p' "$tmp/out" | awk '{ n += $1 } END { print n + 0 }')
  echo "$me: forget --prune ${forget[*]}: $removed snapshots removed"
fi

if [ -n "$price" ] || [ -n "$result" ]; then
  run "repository size" stats --json --mode raw-data
  size=$(jq -r '.total_size // empty' "$tmp/out")
fi
if [ -n "$price" ]; then
  awk -v b="$size" -v p="$price" -v me="$me" \
    'BEGIN { printf "%s: repository holds %.2f GB, about $%.2f a month at $%s per TB\n", me, b / 1e9, b / 1e12 * p, p }'
fi

if [ "$backup_rc" -ne 0 ]; then
  write_result incomplete "$backup_rc" "backup incomplete: $errors errors; some files could not be read"
  sed 's/^/restic: /' "$tmp/err.backup"
  echo "$me: backup incomplete (exit $backup_rc): some files could not be read; snapshot $id saved without them" >&2
  exit "$backup_rc"
fi
write_result success 0
