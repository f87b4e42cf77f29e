#!/usr/bin/env bash
# storage-nocow-check MOUNTPOINT...: log a warning (journal priority 4) for
# every directory that lacks the NOCOW attribute (C in `lsattr -d`). Files
# created before +C was set stay copy-on-write; the warning says how to fix.
# Never fails the boot: exit 0 unless called without arguments.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: storage-nocow-check MOUNTPOINT..." >&2
  exit 2
fi

missing=0
for dir in "$@"; do
  if [ ! -d "$dir" ]; then
    echo "<4>storage: $dir does not exist; cannot check its NOCOW attribute" >&2
    missing=$((missing + 1))
    continue
  fi
  # lsattr -d prints "<flags> <path>"; C is the No_COW flag.
  flags=$(lsattr -d "$dir" 2>/dev/null | cut -d' ' -f1) || flags=""
  case "$flags" in
    *C*) echo "storage: $dir is NOCOW" ;;
    *)
      echo "<4>storage: $dir lacks the NOCOW attribute (C); files created so far are copy-on-write. Fix: stop the service using it, move its files out, chattr +C $dir, copy them back." >&2
      missing=$((missing + 1))
      ;;
  esac
done
echo "storage: $# NOCOW directories checked, $missing without the attribute"
