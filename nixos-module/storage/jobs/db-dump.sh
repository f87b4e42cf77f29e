#!/usr/bin/env bash
# storage-db-dump: a logical dump (pg_dump -Fc) of every database of a
# PostgreSQL cluster into one directory, so that a single database can be
# restored with pg_restore (a snapshot of the data directory restores only
# the whole cluster).
#   storage-db-dump --postgresql SOCKET_DIR [--pg-port N] [--pg-user USER]
#                   --out DIR [--timeout SECONDS] [--best-effort]
# Databases: `SELECT datname FROM pg_database WHERE datallowconn AND NOT
# datistemplate`, so `postgres` is dumped too and only the templates are not.
# Each goes to DIR/<file>.dump.tmp, is checked (pg_restore --list reads its
# table of contents), fsynced, and only then renamed to DIR/<file>.dump: a
# half-written dump never has the final name, and when a dump fails the
# previous good one stays. DIR/manifest.json (written through a temporary
# file and a rename) lists the current databases: name, file, bytes, when
# the dump finished, ok or the error (with the kept older dump's size and
# time, if there is one).
# File names: the database name with every byte outside [A-Za-z0-9._-]
# replaced by `_`, plus `-` and 8 hex digits of the name's SHA-256 when
# anything was replaced ("my db" -> my_db-1c9fa1c5.dump), so that two names
# never share a file. Database names reach pg_dump as a quoted conninfo
# value, never as shell words or as a connection string of their own.
# Dumps of databases that no longer exist are left in DIR (a dropped
# database's last dump may be the one someone needs) and are not in the
# manifest; delete them by hand.
# As root, psql and pg_dump run as USER (default postgres, peer
# authentication on the socket) through runuser, and the dump is written to
# a file root opened: DIR stays root's, mode 0700, files 0600.
# --timeout bounds each psql/pg_dump run (default 3600 s).
# Each failure is one line on stderr, "storage-db-dump: <db>: pg_dump failed
# (exit N): <reason>"; the other databases are still dumped; exit 1 if any
# failed (or the databases cannot be listed), 2 on a usage error, else 0.
# --best-effort: failures are reported the same way, but the exit status is
# 0 (the nightly backup goes on; the manifest says which dump failed).
set -euo pipefail

me=storage-db-dump
pg_dir='' pg_port=5432 pg_user=postgres out='' timeout=3600 best_effort=0
usage() {
  echo "$me: $1" >&2
  echo "usage: $me --postgresql SOCKET_DIR [--pg-port N] [--pg-user USER] --out DIR [--timeout SECONDS] [--best-effort]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --postgresql) [ $# -ge 2 ] || usage "--postgresql needs a socket directory"; pg_dir=$2; shift 2 ;;
    --pg-port) [ $# -ge 2 ] || usage "--pg-port needs a number"; pg_port=$2; shift 2 ;;
    --pg-user) [ $# -ge 2 ] || usage "--pg-user needs a user name"; pg_user=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage "--out needs a directory"; out=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || usage "--timeout needs seconds"; timeout=$2; shift 2 ;;
    --best-effort) best_effort=1; shift ;;
    *) usage "unknown argument: $1" ;;
  esac
done
[ -n "$pg_dir" ] || usage "--postgresql SOCKET_DIR is required"
[ -n "$out" ] || usage "--out DIR is required"
case $pg_port in '' | *[!0-9]*) usage "--pg-port must be a number" ;; esac
case $timeout in '' | *[!0-9]* | 0) usage "--timeout must be a positive whole number of seconds" ;; esac
[ -n "$pg_user" ] || usage "--pg-user must not be empty"

umask 077
mkdir -p "$out" || { echo "$me: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)
chmod 0700 "$out"
[ "$(id -u)" != 0 ] || chown root:root "$out"
cd / # runuser's user may not enter the caller's directory

pg_dump_bin=$(command -v pg_dump) || { echo "$me: pg_dump not found" >&2; exit 1; }
psql_bin=$(command -v psql) || { echo "$me: psql not found" >&2; exit 1; }
run=()
# Peer authentication on the socket: connect as the superuser's OS user.
if [ "$(id -u)" = 0 ] && [ "$pg_user" != root ]; then
  run=(runuser -u "$pg_user" --)
fi
bounded=(timeout --foreground --kill-after=10s "${timeout}s")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

oneline() { # the text of stdin on one line, blanks squeezed
  tr '\n\t\r' '   ' | tr -s ' ' | sed 's/^ //; s/ $//'
}
shown() { # a database name for a message line: control characters as ?
  printf '%s' "$1" | LC_ALL=C tr '[:cntrl:]' '?'
}
file_of() { # file_of NAME: NAME's file name stem (see the header)
  local safe
  safe=$(printf '%s' "$1" | LC_ALL=C tr -c 'A-Za-z0-9._-' '_')
  if [ "$safe" != "$1" ]; then
    safe+=-$(printf '%s' "$1" | sha256sum | cut -c1-8)
  fi
  printf '%s' "$safe"
}
conninfo() { # conninfo NAME: dbname='NAME' with ' and \ escaped
  local v=${1//\\/\\\\}
  printf "dbname='%s'" "${v//\'/\\\'}"
}

# The databases, NUL-separated (a name may hold any character but NUL).
rc=0
"${bounded[@]}" "${run[@]}" "$psql_bin" -X -q -A -t -0 -v ON_ERROR_STOP=1 -h "$pg_dir" -p "$pg_port" -U "$pg_user" \
  -d postgres -c 'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname' \
  >"$work/list" 2>"$work/err" || rc=$?
if [ "$rc" -ne 0 ]; then
  reason=$(sed 's/^psql: error: //' "$work/err" | oneline)
  [ "$rc" -ne 124 ] || reason="timed out after ${timeout}s"
  echo "$me: postgresql $pg_dir:$pg_port: cannot list the databases (exit $rc): ${reason:-no message from psql}" >&2
  exit $((1 - best_effort))
fi
mapfile -d '' -t dbs <"$work/list"

failed=0
entries=() # one JSON object per database
for db in "${dbs[@]}"; do
  f=$(file_of "$db")
  final=$out/$f.dump
  tmp=$final.tmp
  rm -f "$tmp"
  rc=0
  "${bounded[@]}" "${run[@]}" "$pg_dump_bin" -Fc -h "$pg_dir" -p "$pg_port" -U "$pg_user" -d "$(conninfo "$db")" \
    >"$tmp" 2>"$work/err" || rc=$?
  if [ "$rc" -eq 0 ] && ! pg_restore --list "$tmp" >/dev/null 2>"$work/err"; then
    rc=1
    sed -i '1s/^/the dump is unreadable: /' "$work/err"
  fi
  if [ "$rc" -eq 0 ]; then
    sync "$tmp"
    mv -f "$tmp" "$final"
    entries+=("$(jq -cn --arg name "$db" --arg file "$f.dump" --argjson bytes "$(stat -c %s "$final")" \
      --arg at "$(date -u -r "$final" +%FT%TZ)" '{name: $name, file: $file, ok: true, bytes: $bytes, dumped_at: $at}')")
    echo "$me: $(shown "$db"): $f.dump, $(stat -c %s "$final") bytes"
  else
    rm -f "$tmp"
    failed=1
    if [ "$rc" -eq 124 ]; then
      reason="timed out after ${timeout}s" # (what runuser and pg_dump said when stopped is noise)
    else
      reason=$(sed 's/^pg_dump: error: //; s/^pg_dump: //' "$work/err" | oneline)
    fi
    echo "$me: $(shown "$db"): pg_dump failed (exit $rc): ${reason:-no message from pg_dump}" >&2
    kept='null'
    if [ -f "$final" ]; then
      kept=$(jq -cn --argjson bytes "$(stat -c %s "$final")" --arg at "$(date -u -r "$final" +%FT%TZ)" '{bytes: $bytes, dumped_at: $at}')
    fi
    entries+=("$(jq -cn --arg name "$db" --arg file "$f.dump" --arg error "pg_dump failed (exit $rc): $reason" \
      --argjson kept "$kept" '{name: $name, file: $file, ok: false, error: $error, previous: $kept}')")
  fi
done

printf '%s\n' "${entries[@]}" | jq -s --arg at "$(date -u +%FT%TZ)" --arg cluster "$pg_dir:$pg_port" \
  '{written_at: $at, cluster: $cluster, databases: .}' >"$out/manifest.json.tmp"
sync "$out/manifest.json.tmp"
mv -f "$out/manifest.json.tmp" "$out/manifest.json"
sync "$out"
[ "$best_effort" = 1 ] && exit 0
exit "$failed"
