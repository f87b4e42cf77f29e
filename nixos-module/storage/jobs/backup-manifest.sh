#!/usr/bin/env bash
# storage-backup-manifest: what the restore drill compares restored files to.
#   storage-backup-manifest OUT COUNT DIR...
# Picks up to COUNT regular files (at most 64 MiB each) at random from each
# DIR — the read-only snapshots restic is about to read — and writes
# "SHA256<TAB>SIZE<TAB>PATH" lines to OUT (temp + rename). OUT sits in a
# directory the same backup includes, so the drill finds the manifest of
# exactly the snapshot it restores, and a mismatch means restic returned
# other bytes than it read. Names holding a tab, a newline, a backslash or
# a glob character (* ? [) are not sampled: the drill passes the paths to
# `restic restore --include`, which treats those as patterns.
# Exit 0; 1 when a DIR is missing or OUT cannot be written; 2 on a usage
# error.
set -euo pipefail

me=storage-backup-manifest
if [ $# -lt 3 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: $me OUT COUNT DIR..." >&2
  exit 2
fi
out=$1 count=$2
shift 2
mkdir -p "$(dirname "$out")"
tmp=$out.tmp
: >"$tmp" || { echo "$me: cannot write $tmp" >&2; exit 1; }
for dir in "$@"; do
  [ -d "$dir" ] || { rm -f "$tmp"; echo "$me: $dir is not a directory" >&2; exit 1; }
  # -xdev: not into nested subvolumes' snapshots (empty dirs in a snapshot).
  find "$dir" -xdev -type f -size -65537k ! -path $'*[\t\n]*' ! -path '*[][*?\\]*' -print0 |
    shuf -z -n "$count" |
    while IFS= read -r -d '' f; do
      sum=$(sha256sum <"$f") || continue # vanished or unreadable: skip
      printf '%s\t%s\t%s\n' "${sum%% *}" "$(stat -c %s "$f")" "$f"
    done >>"$tmp"
done
mv -f "$tmp" "$out"
echo "$me: $(wc -l <"$out") files sampled into $out"
