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
# A failed prepare (a full filesystem: "cannot snapshot MOUNTDIR/@persist:
# No space left on device", a missing subvolume) leaves nothing half-made:
# it deletes the snapshots it took in this run and @backup-source if this
# run created it (deleting works on a full Btrfs: the global reserve). The
# previous run's snapshot of a subvolume it reached is gone either way
# (release deletes it too; restic has it). MOUNTDIR stays mounted for
# release. See snapshot-enospc-test.
set -euo pipefail

me=storage-backup-source
die() { echo "$me: $*" >&2; exit 1; }
usage() { echo "usage: $me prepare|release DEVICE MOUNTDIR SUBVOL..." >&2; exit 2; }
# why "btrfs's stderr": its last line's reason ("ERROR: cannot snapshot
# '/x': No space left on device" -> "No space left on device").
why() {
  local r
  r=$(grep -v '^[[:space:]]*$' <<<"$1" | tail -n1 || true)
  case $r in
    "ERROR: cannot "*": "*) r=${r##*: } ;;
    *) r=${r#ERROR: } ;;
  esac
  echo "${r:-no message from btrfs}"
}

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
  made=()     # the snapshots this run took
  made_dir='' # this run created $dir
  # fail MESSAGE: undo this run's snapshots (and $dir if it made it), then
  # the one-line error.
  fail() {
    local p left=''
    for p in "${made[@]}"; do
      btrfs -q subvolume delete "$p" >/dev/null 2>&1 || left+=" $p"
    done
    if [ -n "$made_dir" ]; then
      btrfs -q subvolume delete "$dir" >/dev/null 2>&1 || left+=" $dir"
    fi
    die "$1${left:+ (and could not remove$left)}"
  }
  if [ ! -d "$dir" ]; then
    err=$(btrfs -q subvolume create "$dir" 2>&1 >/dev/null) || die "cannot create $dir: $(why "$err")"
    made_dir=1
  fi
  for sv in "$@"; do
    [ -d "$top/$sv" ] || fail "$device has no subvolume $sv"
    if [ -e "$dir/$sv" ]; then
      err=$(btrfs -q subvolume delete "$dir/$sv" 2>&1 >/dev/null) ||
        fail "cannot delete the old $dir/$sv: $(why "$err")"
    fi
    # A snapshot is created whole or not at all (one transaction; the
    # kernel reserves its metadata first and fails with ENOSPC up front).
    err=$(btrfs -q subvolume snapshot -r "$top/$sv" "$dir/$sv" 2>&1 >/dev/null) ||
      fail "cannot snapshot $top/$sv: $(why "$err")"
    made+=("$dir/$sv")
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
