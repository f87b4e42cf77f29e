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

# scrub status of a running scrub: "Status: running" (btrfs-progs >= 5.x,
# once its status file has stats), "running for" (older ones), and, always
# while running, "Time left:" (btrfs-progs 6.2 shows only that and "no stats
# available" when the status file has none yet; found by the storage jobs
# test with a scrub slowed through sysfs).
scrub_running() {
  btrfs scrub status "$1" 2>/dev/null | grep -Eqi 'status:[[:space:]]+running|running for|^time left:'
}

# balance status exits 0 when no balance runs, 1 when one is running or
# paused, 2 on other errors (btrfs-balance(8)); an error is not "running":
# it would skip the filesystem silently.
balance_state() {
  local rc=0
  btrfs balance status "$1" >/dev/null 2>&1 || rc=$?
  case $rc in
    0) echo idle ;;
    1) echo running ;;
    *) echo error ;;
  esac
}

failed=0
for mp in "$@"; do
  if scrub_running "$mp"; then
    echo "btrfs-balance: $mp: a scrub is running, skipped"
    continue
  fi
  case $(balance_state "$mp") in
    running)
      echo "btrfs-balance: $mp: a balance is already running or paused, skipped"
      continue
      ;;
    error)
      echo "btrfs-balance: $mp: cannot read its balance status (not a Btrfs mount?)" >&2
      failed=1
      continue
      ;;
  esac
  echo "btrfs-balance: $mp: btrfs balance start -dusage=$dusage -musage=$musage"
  if btrfs balance start -dusage="$dusage" -musage="$musage" "$mp"; then
    echo "btrfs-balance: $mp: done"
  else
    echo "btrfs-balance: $mp: balance failed" >&2
    failed=1
  fi
done
exit "$failed"
