#!/usr/bin/env bash
# storage-quiesce: make databases consistent on disk right before a Btrfs
# snapshot (run as root by btrbk-storage.service's ExecStartPre).
#   Redis:      BGSAVE, then wait until rdb_bgsave_in_progress:0 and
#               rdb_last_bgsave_status:ok.
#   PostgreSQL: CHECKPOINT through psql on the Unix socket, as the
#               superuser (runuser when started as root).
# Usage: storage-quiesce [--redis SOCKET [--redis-password-file FILE]]...
#          [--postgresql SOCKET_DIR [--pg-port N] [--pg-user USER]]
#          [--timeout SECONDS]
# Each failure is one line on stderr ("storage-quiesce: ..."); exit 1 if any
# database failed, 2 on a usage error. Nothing to do is success.
set -euo pipefail

timeout=120
redis=()      # socket paths
redis_pw=()   # password file per socket ("" for none)
pg_dir=''
pg_port=5432
pg_user=postgres

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

quiesce_postgresql() {
  local out run=()
  # Peer authentication on the socket: connect as the superuser's OS user.
  if [ "$(id -u)" = 0 ] && [ "$pg_user" != root ]; then
    run=(runuser -u "$pg_user" --)
  fi
  if out=$(timeout "$timeout" "${run[@]}" psql -X -q -v ON_ERROR_STOP=1 -h "$pg_dir" -p "$pg_port" \
    -U "$pg_user" -d postgres -c CHECKPOINT 2>&1); then
    echo "storage-quiesce: postgresql $pg_dir:$pg_port: CHECKPOINT done"
  else
    fail "postgresql $pg_dir:$pg_port: CHECKPOINT failed: $(tr '\n\t' '  ' <<<"$out" | tr -s ' ' | sed 's/ *$//')"
  fi
}

for i in "${!redis[@]}"; do
  quiesce_redis "${redis[$i]}" "${redis_pw[$i]}"
done
if [ -n "$pg_dir" ]; then
  quiesce_postgresql
fi
exit "$failed"
