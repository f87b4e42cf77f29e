#!/usr/bin/env bash
# btrfs-balance [-d DUSAGE] [-m MUSAGE] MOUNTPOINT...
# Filtered balance: rewrite only data/metadata block groups at most
# DUSAGE/MUSAGE percent full (default 50/30), which returns mostly empty
# chunks to the free pool without rewriting the whole filesystem.
# A filesystem where a scrub or a balance is already running is skipped
# (exit 0 for it). Exit 1 if any balance failed, 2 on bad usage.
set -euo pipefail

dusage=50
musage=30
usage() {
  echo "usage: btrfs-balance [-d DUSAGE] [-m MUSAGE] MOUNTPOINT..." >&2
  exit 2
}
while getopts "d:m:" opt; do
  case "$opt" in
    d) dusage=$OPTARG ;;
    m) musage=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ "$#" -gt 0 ] || usage
for n in "$dusage" "$musage"; do
  case "$n" in
    '' | *[!0-9]*) usage ;;
  esac
  [ "$n" -le 100 ] || usage
done

# scrub status: "Status: running" (btrfs-progs >= 5.x), older ones print
# "scrub started at ... running for".
scrub_running() {
  btrfs scrub status "$1" 2>/dev/null | grep -Eqi 'status:[[:space:]]+running|running for'
}
# balance status: "No balance found on '<mp>'" when idle; otherwise a
# running or paused balance is described.
balance_running() {
  local out
  out=$(btrfs balance status "$1" 2>&1) || true
  ! grep -q 'No balance found' <<<"$out"
}

failed=0
for mp in "$@"; do
  if scrub_running "$mp"; then
    echo "btrfs-balance: $mp: a scrub is running, skipped"
    continue
  fi
  if balance_running "$mp"; then
    echo "btrfs-balance: $mp: a balance is already running or paused, skipped"
    continue
  fi
  echo "btrfs-balance: $mp: btrfs balance start -dusage=$dusage -musage=$musage"
  if btrfs balance start -dusage="$dusage" -musage="$musage" "$mp"; then
    echo "btrfs-balance: $mp: done"
  else
    echo "btrfs-balance: $mp: balance failed" >&2
    failed=1
  fi
done
exit "$failed"
