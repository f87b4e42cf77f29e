#!/usr/bin/env bash
# storage-restore-drill: prove the latest offsite backup by restoring it.
#   storage-restore-drill --result FILE --record-dir DIR [--host NAME]
#     [--postgresql PATH] [--redis PATH] [--dumps PATH] [--scratch DIR]
#     [--timeout DURATION] [--keep]
# Environment as for storage-backup (RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE,
# AWS_* from the unit's EnvironmentFile, RESTIC_CACHE_DIR).
# From the newest restic snapshot of --host it restores, into a fresh
# directory under --scratch:
#   * --record-dir: the backup's record (quiesce's record.json: the marker
#     token and PostgreSQL's marker row count) and manifest.tsv (sha256 of a
#     sample of files, taken from the read-only source at backup time);
#   * the sampled files: each must match its sha256 (byte for byte);
#   * --postgresql PATH (the backed-up copy of the subvolume holding PGDATA):
#     a throwaway PostgreSQL runs on it — its own config, socket in the
#     scratch directory, no TCP, no archiving — recovers, passes
#     `pg_amcheck --all`, and its storage_backup.marker table holds exactly
#     the recorded row count and this run's token;
#   * --redis PATH: every *.rdb under it passes `redis-check-rdb`, loads in
#     a throwaway redis-server (socket only, port 0), and holds the marker;
#   * --dumps PATH (the backed-up directory of storage-db-dump's files):
#     every *.dump there is a readable pg_dump archive (`pg_restore --list`).
# Then it writes FILE (JSON, temp + rename; written on failure too):
#   {"job":"restore-drill","result":"success"|"failure","started":T,
#    "finished":T,"duration_seconds":N,"snapshot":ID,"snapshot_time":"…",
#    "checks":[{"name":…,"ok":…,"detail":…}],"error":…}
# and removes the scratch directory (--keep leaves it, servers stopped).
# Exit 0 when every check passed; 1 on a failed check or restore, with one
# line on stderr "storage-restore-drill: <what> failed: <why>"; 2 on a usage
# error. Runs as root (PostgreSQL runs as its data directory's owner
# mapped to user postgres via runuser).
set -euo pipefail

me=storage-restore-drill
usage() { echo "usage: $me --result FILE --record-dir DIR [--host NAME] [--postgresql PATH] [--redis PATH] [--dumps PATH] [--scratch DIR] [--timeout DURATION] [--keep]" >&2; exit 2; }
result='' record_dir='' host=$(hostname) pg_path='' redis_path='' dumps_path='' scratch_base=/var/tmp limit=6h keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --result | --record-dir | --host | --postgresql | --redis | --dumps | --scratch | --timeout) [ $# -ge 2 ] || usage ;;&
    --result) result=$2; shift 2 ;;
    --record-dir) record_dir=${2%/}; shift 2 ;;
    --host) host=$2; shift 2 ;;
    --postgresql) pg_path=${2%/}; shift 2 ;;
    --redis) redis_path=${2%/}; shift 2 ;;
    --dumps) dumps_path=${2%/}; shift 2 ;;
    --scratch) scratch_base=$2; shift 2 ;;
    --timeout) limit=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) usage ;;
  esac
done
{ [ -n "$result" ] && [ -n "$record_dir" ]; } || usage
case $scratch_base in /*) ;; *) echo "$me: --scratch must be an absolute path" >&2; exit 2 ;; esac
case $scratch_base in *[[:space:]]*) echo "$me: --scratch must not contain spaces" >&2; exit 2 ;; esac

started=$(date +%s)
checks=() # JSON objects
snapshot='' snapshot_time=''
mkdir -p "$scratch_base"
work=$(mktemp -d "$scratch_base/storage-drill.XXXXXX")
chmod 711 "$work" # the postgres user must reach its data directory
target=$work/restore
pg_data='' redis_pids=()

stop_servers() {
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    runuser -u postgres -- pg_ctl -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
  fi
  local p
  for p in "${redis_pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
write_result() { # write_result success|failure [ERROR]
  local now tmp
  now=$(date +%s)
  tmp=$result.tmp
  mkdir -p "$(dirname "$result")"
  printf '%s\n' "${checks[@]}" | jq -s --arg r "$1" --arg e "${2:-}" --argjson s "$started" --argjson f "$now" \
    --arg id "$snapshot" --arg t "$snapshot_time" --arg repo "${RESTIC_REPOSITORY:-}" --arg host "$host" \
    '{job: "restore-drill", result: $r, started: $s, finished: $f, duration_seconds: ($f - $s),
      host: $host, repository: $repo,
      snapshot: (if $id == "" then null else $id end), snapshot_time: (if $t == "" then null else $t end),
      checks: map(select(. != null)), error: (if $e == "" then null else $e end)}' >"$tmp"
  mv -f "$tmp" "$result"
  written=1
}
written=0
cleanup() {
  local rc=$?
  # An unforeseen exit (set -e) still leaves a failed result behind.
  [ "$written" = 1 ] || write_result failure "the drill stopped unexpectedly (exit $rc)"
  stop_servers
  if [ "$keep" = 1 ]; then echo "$me: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
check() { # check NAME OK DETAIL: record one check
  checks+=("$(jq -cn --arg n "$1" --argjson ok "$2" --arg d "$3" '{name: $n, ok: $ok, detail: $d}')")
  local mark=FAILED
  [ "$2" != true ] || mark=ok
  echo "$me: $1: $mark: $3"
}
die() { # die WHAT WHY: record, one line on stderr, exit 1
  check "$1" false "$2"
  write_result failure "$1 failed: $2"
  echo "$me: $1 failed: $2" >&2
  exit 1
}
oneline() { tr '\n\t' '  ' | tr -s ' ' | sed 's/^ //; s/ $//' | cut -c1-300; }
restic_reason() { # the Fatal: line, else the first per-file error and the count, else the last line
  local first
  first=$(grep -m1 -E '^ignoring error for ' "$1" | sed 's/^ignoring error for //' || true)
  { grep -E '^Fatal: ' "$1" || grep -vE '^[[:space:]]*$' "$1" || echo "no message from restic"; } | tail -n1 |
    sed 's/^Fatal: //' | { [ -z "$first" ] || printf '%s; ' "$first"; cat; } | oneline
}

# --- The newest snapshot ----------------------------------------------------
[ -n "${RESTIC_REPOSITORY:-}" ] || die "reading the repository settings" "RESTIC_REPOSITORY is not set"
if ! restic snapshots --json --host "$host" --latest 1 >"$work/snapshots.json" 2>"$work/err"; then
  die "listing snapshots" "$(restic_reason "$work/err") [$RESTIC_REPOSITORY]"
fi
snapshot=$(jq -r 'sort_by(.time) | last | .id // empty' "$work/snapshots.json")
[ -n "$snapshot" ] || die "finding a snapshot" "no snapshot of host $host in $RESTIC_REPOSITORY"
snapshot_time=$(jq -r 'sort_by(.time) | last | .time' "$work/snapshots.json")
echo "$me: snapshot ${snapshot:0:8} of $snapshot_time"

restore() { # restore WHAT --include PATH...: into $target, bounded by --timeout
  local what=$1 rc=0
  shift
  timeout --foreground --signal=INT --kill-after=30s "$limit" \
    restic restore "$snapshot" --target "$target" "$@" >"$work/out" 2>"$work/err" || rc=$?
  [ "$rc" -ne 124 ] || echo "Fatal: restore did not finish within $limit" >>"$work/err"
  # restic 0.14 prints "There were N errors" and exits 1 when a blob fails
  # its hash or decryption (a corrupted pack).
  [ "$rc" -eq 0 ] || die "restoring $what" "$(restic_reason "$work/err") (exit $rc)"
}

# --- The record and the manifest --------------------------------------------
restore "the backup record" --include "$record_dir"
rec=$target$record_dir/record.json
manifest=$target$record_dir/manifest.tsv
[ -f "$rec" ] || die "reading the backup record" "the snapshot has no $record_dir/record.json"
token=$(jq -r .token "$rec")

# --- Files: a sample, byte for byte -----------------------------------------
if [ -s "$manifest" ]; then
  includes=()
  while IFS=$'\t' read -r _ _ path; do includes+=(--include "$path"); done <"$manifest"
  restore "the sampled files" "${includes[@]}"
  n=0 bad=0 first=''
  while IFS=$'\t' read -r sum size path; do
    n=$((n + 1))
    got=$(sha256sum <"$target$path" 2>/dev/null | cut -d' ' -f1 || true)
    if [ "$got" != "$sum" ] || [ "$(stat -c %s "$target$path" 2>/dev/null)" != "$size" ]; then
      bad=$((bad + 1))
      [ -n "$first" ] || first=$path
    fi
  done <"$manifest"
  [ "$bad" -eq 0 ] || die "files" "$bad of $n sampled files differ from the backed-up source, e.g. $first"
  check files true "$n sampled files restored byte for byte (sha256 and size)"
else
  check files true "no files sampled (the manifest is empty or absent)"
fi

# --- PostgreSQL -------------------------------------------------------------
if [ -n "$pg_path" ]; then
  restore "PostgreSQL ($pg_path)" --include "$pg_path"
  version_file=$(find "$target$pg_path" -maxdepth 3 -name PG_VERSION -print 2>/dev/null |
    awk '{ print length($0) "\t" $0 }' | sort -n | head -n1 | cut -f2-)
  [ -n "$version_file" ] || die "PostgreSQL" "no data directory (PG_VERSION) under $pg_path in the snapshot"
  # Out of the restored tree, whose parent directories keep their original
  # (often root-only) modes, to a path user postgres can reach.
  mv "$(dirname "$version_file")" "$work/pgdata"
  pg_data=$work/pgdata
  want=$(cat "$pg_data/PG_VERSION")
  have=$(postgres --version | sed -n 's/.* \([0-9][0-9]*\)[.].*/\1/p')
  [ "$want" = "$have" ] || die "PostgreSQL" "the data directory is version $want, the drill's server is $have"
  # A copy of a running server's directory: its lock file and any standby
  # or recovery signal belong to the original.
  rm -f "$pg_data/postmaster.pid" "$pg_data/postmaster.opts" "$pg_data/standby.signal" "$pg_data/recovery.signal"
  chown -R postgres: "$pg_data"
  chmod 700 "$pg_data"
  # The throwaway server's own files: socket, configuration, log.
  pgw=$work/pg
  sock=$pgw/sock
  install -d -o postgres -m 700 "$pgw" "$sock"
  printf 'local all all trust\n' >"$pgw/pg_hba.conf"
  : >"$pgw/pg_ident.conf"
  : >"$pgw/postgresql.conf"
  chown postgres "$pgw/pg_hba.conf" "$pgw/pg_ident.conf" "$pgw/postgresql.conf"
  # -c on the command line wins over postgresql.auto.conf (ALTER SYSTEM) of
  # the restored cluster: no TCP, no archiving, our socket and auth.
  opts="-c config_file=$pgw/postgresql.conf -c hba_file=$pgw/pg_hba.conf -c ident_file=$pgw/pg_ident.conf"
  opts+=" -c listen_addresses= -c unix_socket_directories=$sock -c port=5432 -c archive_mode=off"
  opts+=" -c shared_buffers=64MB -c max_connections=20 -c logging_collector=off -c shared_preload_libraries="
  t0=$SECONDS
  if ! runuser -u postgres -- pg_ctl -D "$pg_data" -o "$opts" -l "$pgw/log" -w -t 3600 start >"$pgw/pg_ctl.out" 2>&1; then
    why=$(grep -hE 'FATAL|PANIC' "$pgw/log" 2>/dev/null | tail -n1 || true)
    [ -n "$why" ] || why=$(grep -v '^[[:space:]]*$' "$pgw/pg_ctl.out" | tail -n1 || true)
    die "PostgreSQL" "the restored cluster did not start: $(printf '%s' "$why" | oneline)"
  fi
  check "postgresql recovery" true "started and recovered in $((SECONDS - t0)) s$(grep -q 'redo done' "$pgw/log" && echo ', WAL replayed')"
  pq() { runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -h "$sock" -p 5432 -U postgres "$@"; }
  if ! out=$(runuser -u postgres -- pg_amcheck -h "$sock" -p 5432 -U postgres --all --install-missing 2>&1); then
    die "pg_amcheck" "$(printf '%s' "$out" | head -n3 | oneline)"
  fi
  dbs=$(pq -d postgres -c "SELECT count(*) FROM pg_database WHERE datallowconn" 2>/dev/null || echo '?')
  check pg_amcheck true "tables and B-tree indexes of $dbs databases verified"
  want_rows=$(jq -r '.postgresql.marker_rows // empty' "$rec")
  if [ -n "$want_rows" ]; then
    got=$(pq -d storage_backup -c "SELECT count(*) || ' ' || count(*) FILTER (WHERE token = '$token') FROM marker" 2>&1 | oneline) || true
    [ "$got" = "$want_rows 1" ] ||
      die "PostgreSQL marker" "storage_backup.marker: want $want_rows rows with token $token, got '${got}' (rows, with token)"
    check "postgresql rows" true "storage_backup.marker holds the $want_rows rows recorded at backup time, incl. token $token"
  else
    check "postgresql rows" true "not compared: the backup record has no PostgreSQL marker (not quiesced)"
  fi
  runuser -u postgres -- pg_ctl -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
fi

# --- PostgreSQL dumps (one database each) ------------------------------------
if [ -n "$dumps_path" ]; then
  restore "the database dumps ($dumps_path)" --include "$dumps_path"
  mapfile -t dumps < <(find "$target$dumps_path" -maxdepth 1 -type f -name '*.dump' 2>/dev/null | sort)
  [ ${#dumps[@]} -gt 0 ] || die "postgresql dumps" "no *.dump under $dumps_path in the snapshot"
  for f in "${dumps[@]}"; do
    pg_restore --list "$f" >/dev/null 2>"$work/err" ||
      die "postgresql dumps" "${f#"$target"} is not a readable pg_dump archive: $(head -n1 "$work/err" | oneline)"
  done
  check "postgresql dumps" true "${#dumps[@]} pg_dump archives readable (pg_restore --list)"
fi

# --- Redis ------------------------------------------------------------------
if [ -n "$redis_path" ]; then
  restore "Redis ($redis_path)" --include "$redis_path"
  mapfile -t rdbs < <(find "$target$redis_path" -maxdepth 3 -type f -name '*.rdb' | sort)
  [ ${#rdbs[@]} -gt 0 ] || die "Redis" "no *.rdb file under $redis_path in the snapshot"
  marked=$(jq -r '[.redis[]? | select(.marker)] | length' "$rec")
  i=0
  for rdb in "${rdbs[@]}"; do
    i=$((i + 1))
    name=${rdb#"$target"}
    out=$(redis-check-rdb "$rdb" 2>&1) || die "redis-check-rdb" "$name: $(grep -iE 'error|wrong|fail' <<<"$out" | head -n1 | oneline)"
    d=$work/redis$i
    mkdir -p "$d"
    cp "$rdb" "$d/dump.rdb"
    redis-server --port 0 --unixsocket "$d/sock" --unixsocketperm 700 --dir "$d" --dbfilename dump.rdb \
      --save '' --appendonly no --daemonize yes --pidfile "$d/pid" --logfile "$d/log" >/dev/null
    for _ in $(seq 600); do [ -s "$d/pid" ] && [ -S "$d/sock" ] && break; sleep 0.1; done
    [ -s "$d/pid" ] && redis_pids+=("$(cat "$d/pid")")
    loaded=''
    for _ in $(seq 3000); do
      info=$(redis-cli -s "$d/sock" INFO persistence 2>/dev/null | tr -d '\r' || true)
      grep -qx 'loading:0' <<<"$info" && { loaded=1; break; }
      sleep 0.1
    done
    [ -n "$loaded" ] || die "Redis" "$name did not load: $(tail -n1 "$d/log" | oneline)"
    keys=$(redis-cli -s "$d/sock" DBSIZE | tr -d '\r')
    got=$(redis-cli -s "$d/sock" GET storage-backup:marker | tr -d '\r')
    redis-cli -s "$d/sock" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    if [ "$marked" -gt 0 ] && [ "$got" != "$token" ]; then
      die "Redis marker" "$name holds marker '${got}', the backup record says $token"
    fi
    check "redis $name" true "redis-check-rdb ok, loaded $keys keys$([ "$marked" -gt 0 ] && echo ", marker $token present")"
  done
fi

write_result success
echo "$me: snapshot ${snapshot:0:8} ($snapshot_time) restored and proven in $(($(date +%s) - started)) s"
