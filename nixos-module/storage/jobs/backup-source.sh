#!/usr/bin/env bash
# storage-backup-source: the stable, read-only source of the offsite backup.
#   storage-backup-source prepare DEVICE MOUNTDIR SUBVOL...
#   storage-backup-source release DEVICE MOUNTDIR SUBVOL...
# prepare mounts the top level (subvolid=5) of the Btrfs filesystem on DEVICE
# at MOUNTDIR (unless something is mounted there already) and replaces
# MOUNTDIR/@backup-source/<SUBVOL> by a fresh read-only snapshot of
# MOUNTDIR/<SUBVOL>. restic then always reads the same absolute paths, finds
# the previous snapshot of those paths as its parent, and a snapshot keeps
# inode numbers and times, so unchanged files are not read again.
# release deletes those snapshots and unmounts MOUNTDIR.
# Exit 0, 1 on a failure (one line on stderr), 2 on a usage error.
set -euo pipefail

me=storage-backup-source
die() { echo "$me: $*" >&2; exit 1; }
usage() { echo "usage: $me prepare|release DEVICE MOUNTDIR SUBVOL..." >&2; exit 2; }

[ $# -ge 4 ] || usage
action=$1 device=$2 top=$3
shift 3
case $action in prepare | release) ;; *) usage ;; esac
for sv in "$@"; do
  case $sv in "" | */* | . | ..) echo "$me: bad subvolume name '$sv'" >&2; exit 2 ;; esac
done
dir=$top/@backup-source

if [ "$action" = prepare ]; then
  mkdir -p "$top"
  if ! mountpoint -q "$top"; then
    mount -t btrfs -o subvolid=5,noatime "$device" "$top" 2>/dev/null ||
      die "cannot mount the top level of $device on $top"
  fi
  if [ ! -d "$dir" ]; then
    btrfs -q subvolume create "$dir" >/dev/null || die "cannot create $dir"
  fi
  for sv in "$@"; do
    [ -d "$top/$sv" ] || die "$device has no subvolume $sv"
    if [ -e "$dir/$sv" ]; then
      btrfs -q subvolume delete "$dir/$sv" >/dev/null || die "cannot delete the old $dir/$sv"
    fi
    # A snapshot is created whole or not at all (one transaction).
    err=$(btrfs -q subvolume snapshot -r "$top/$sv" "$dir/$sv" 2>&1 >/dev/null) ||
      die "cannot snapshot $top/$sv: ${err##*ERROR: }"
    echo "$me: $dir/$sv: read-only snapshot of $sv"
  done
else
  status=0
  for sv in "$@"; do
    if [ -e "$dir/$sv" ]; then
      btrfs -q subvolume delete "$dir/$sv" >/dev/null || { echo "$me: cannot delete $dir/$sv" >&2; status=1; }
    fi
  done
  if mountpoint -q "$top"; then
    umount "$top" || { echo "$me: cannot unmount $top" >&2; status=1; }
  fi
  exit "$status"
fi
