#!/usr/bin/env bash
# storage-quiesce: make databases consistent on disk right before a Btrfs
# snapshot (run as root by btrbk-storage.service's ExecStartPre).
#   Redis:      BGSAVE, then wait until rdb_bgsave_in_progress:0 and
#               rdb_last_bgsave_status:ok.
#   PostgreSQL: CHECKPOINT through psql on the Unix socket, as the
#               superuser (runuser when started as root).
# Usage: storage-quiesce [--redis SOCKET [--redis-password-file FILE]]...
#          [--postgresql SOCKET_DIR [--pg-port N] [--pg-user USER]]
#          [--timeout SECONDS] [--record FILE] [--best-effort]
# --record FILE (the offsite backup's run): first leave a marker the restore
#   drill can look for, then write FILE (JSON, temp + rename) saying what
#   was marked. The marker is one token per run: Redis gets the key
#   `storage-backup:marker` = TOKEN before its BGSAVE; PostgreSQL gets a row
#   (TOKEN) in table `marker` of database `storage_backup` (created on first
#   use; rows older than 400 days are deleted) before its CHECKPOINT, and
#   FILE records the table's row count after the insert. Nothing else writes
#   that table, so a restored cluster must hold exactly that many rows and
#   the token: the drill's "row count recorded at backup time".
# --best-effort: failures are still reported, one line each, but the exit
#   status is 0 (the backup then goes on with crash-consistent data; FILE
#   says which database was not quiesced).
# Each failure is one line on stderr ("storage-quiesce: ..."); exit 1 if any
# database failed, 2 on a usage error. Nothing to do is success.
set -euo pipefail

timeout=120
redis=()      # socket paths
redis_pw=()   # password file per socket ("" for none)
pg_dir=''
pg_port=5432
pg_user=postgres
record=''
best_effort=0

die_usage() {
  echo "storage-quiesce: $1" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --redis) [ $# -ge 2 ] || die_usage "--redis needs a socket path"; redis+=("$2"); redis_pw+=(""); shift 2 ;;
    --redis-password-file)
      if [ $# -lt 2 ] || [ ${#redis[@]} -eq 0 ]; then die_usage "--redis-password-file FILE follows a --redis SOCKET"; fi
      redis_pw[${#redis[@]} - 1]=$2; shift 2 ;;
    --postgresql) [ $# -ge 2 ] || die_usage "--postgresql needs a socket directory"; pg_dir=$2; shift 2 ;;
    --pg-port) [ $# -ge 2 ] || die_usage "--pg-port needs a number"; pg_port=$2; shift 2 ;;
    --pg-user) [ $# -ge 2 ] || die_usage "--pg-user needs a user name"; pg_user=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || die_usage "--timeout needs seconds"; timeout=$2; shift 2 ;;
    --record) [ $# -ge 2 ] || die_usage "--record needs a file"; record=$2; shift 2 ;;
    --best-effort) best_effort=1; shift ;;
    *) die_usage "unknown argument: $1" ;;
  esac
done
case $timeout in '' | *[!0-9]*) die_usage "--timeout must be a whole number of seconds" ;; esac
case $pg_port in '' | *[!0-9]*) die_usage "--pg-port must be a number" ;; esac

failed=0
fail() {
  echo "storage-quiesce: $1" >&2
  failed=1
}

# The run's token: time and randomness, nothing secret.
token=$(date -u +%Y%m%dT%H%M%SZ)-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
redis_json=() # one JSON object per Redis server (with --record)
pg_json=null

# rcli SOCKET ARGS...: one redis-cli call, its reply on stdout (no trailing CR).
rcli() {
  local sock=$1
  shift
  redis-cli -s "$sock" "$@" 2>&1 | tr -d '\r'
}
info_field() { # info_field "INFO text" NAME
  sed -n "s/^$2://p" <<<"$1" | head -n1
}

quiesce_redis() {
  local sock=$1 pwfile=$2 deadline reply info
  if [ -n "$pwfile" ]; then
    [ -r "$pwfile" ] || { fail "redis $sock: cannot read password file $pwfile"; return; }
    REDISCLI_AUTH=$(head -n1 "$pwfile")
    export REDISCLI_AUTH
  else
    unset REDISCLI_AUTH
  fi
  deadline=$((SECONDS + timeout))
  if [ -n "$record" ]; then
    reply=$(rcli "$sock" SET storage-backup:marker "$token") || true
    [ "$reply" = OK ] || { fail "redis $sock: setting the backup marker failed: ${reply//$'\n'/ }"; return; }
  fi
  # A BGSAVE or AOF rewrite already running refuses ours; retry until the
  # deadline, so that the RDB file written is one started now.
  while :; do
    reply=$(rcli "$sock" BGSAVE) || true
    case $reply in
      "Background saving started") break ;;
      *"in progress"*)
        if [ "$SECONDS" -ge "$deadline" ]; then
          fail "redis $sock: BGSAVE refused for ${timeout}s: ${reply//$'\n'/ }"
          return
        fi
        sleep 0.2 ;;
      *)
        fail "redis $sock: BGSAVE failed: ${reply//$'\n'/ }"
        return ;;
    esac
  done
  # BGSAVE forks before replying: in_progress is 1 until our save ends.
  while :; do
    info=$(rcli "$sock" INFO persistence) || true
    case $(info_field "$info" rdb_bgsave_in_progress) in
      0)
        local status
        status=$(info_field "$info" rdb_last_bgsave_status)
        if [ "$status" = ok ]; then
          echo "storage-quiesce: redis $sock: BGSAVE done (LASTSAVE $(rcli "$sock" LASTSAVE))"
          if [ -n "$record" ]; then
            redis_json+=("$(jq -cn --arg s "$sock" --arg d "$(rcli "$sock" CONFIG GET dir | sed -n 2p)" \
              --arg f "$(rcli "$sock" CONFIG GET dbfilename | sed -n 2p)" '{socket: $s, dir: $d, dbfilename: $f, marker: true}')")
          fi
        else
          fail "redis $sock: BGSAVE finished with rdb_last_bgsave_status:${status:-unknown}"
        fi
        return ;;
      1) ;;
      *)
        fail "redis $sock: INFO persistence failed while waiting for BGSAVE: ${info//$'\n'/ }"
        return ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "redis $sock: BGSAVE still running after ${timeout}s"
      return
    fi
    sleep 0.2
  done
}

# psql_as SQL-ARGS...: psql on the socket as the superuser (peer auth: run
# as its OS user when we are root).
psql_as() {
  local run=()
  if [ "$(id -u)" = 0 ] && [ "$pg_user" != root ]; then
    run=(runuser -u "$pg_user" --)
  fi
  timeout "$timeout" "${run[@]}" psql -X -q -At -v ON_ERROR_STOP=1 -h "$pg_dir" -p "$pg_port" -U "$pg_user" "$@" 2>&1
}
oneline() { tr '\n\t' '  ' <<<"$1" | tr -s ' ' | sed 's/ *$//'; }

quiesce_postgresql() {
  local out rows=''
  if [ -n "$record" ]; then
    # CREATE DATABASE cannot run inside a transaction block: \gexec does it
    # only when missing.
    if ! out=$(psql_as -d postgres <<<"SELECT 'CREATE DATABASE storage_backup' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'storage_backup') \gexec"); then
      fail "postgresql $pg_dir:$pg_port: creating database storage_backup failed: $(oneline "$out")"
      return
    fi
    if ! rows=$(psql_as -d storage_backup -v token="$token" <<'SQL'
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS marker (token text PRIMARY KEY, taken_at timestamptz NOT NULL DEFAULT now());
BEGIN;
DELETE FROM marker WHERE taken_at < now() - interval '400 days';
INSERT INTO marker (token) VALUES (:'token');
SELECT count(*) FROM marker;
COMMIT;
SQL
    ); then
      fail "postgresql $pg_dir:$pg_port: writing the backup marker failed: $(oneline "$rows")"
      return
    fi
  fi
  if out=$(psql_as -d postgres -c CHECKPOINT); then
    echo "storage-quiesce: postgresql $pg_dir:$pg_port: CHECKPOINT done"
    [ -z "$record" ] || pg_json=$(jq -cn --argjson n "$rows" '{marker_rows: $n}')
  else
    fail "postgresql $pg_dir:$pg_port: CHECKPOINT failed: $(oneline "$out")"
  fi
}

for i in "${!redis[@]}"; do
  quiesce_redis "${redis[$i]}" "${redis_pw[$i]}"
done
if [ -n "$pg_dir" ]; then
  quiesce_postgresql
fi
if [ -n "$record" ]; then
  mkdir -p "$(dirname "$record")"
  printf '%s\n' "${redis_json[@]}" | jq -s --arg t "$token" --arg at "$(date -u +%s)" \
    --argjson pg "$pg_json" --argjson ok "$((1 - failed))" \
    '{token: $t, time: ($at | tonumber), quiesced: ($ok == 1), postgresql: $pg, redis: map(select(. != null))}' \
    >"$record.tmp"
  mv -f "$record.tmp" "$record"
fi
[ "$best_effort" = 1 ] && exit 0
exit "$failed"
