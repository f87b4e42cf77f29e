#!/bin/bash
# genfs.sh IMAGE ARCHIVES NESTED DUE [READONLY]
#
# Generates a Btrfs test filesystem in the image file IMAGE (created, or
# truncated if it is a regular file) for benches/bench and for tests:
#
#   @root        a few directories and files (the live root to be archived)
#   @nix         a few files
#   @persist     a few files
#   @old_roots/  ARCHIVES archives named with root-rotate stamps
#                (YYYY-MM-DDTHH:MM:SSZ, UTC), oldest first, so that subvolume
#                IDs grow with the stamp. The DUE oldest are 40+ days old, the
#                rest between 28 days and 1 hour old. Each archive's mtime is
#                set (touch -d) to its stamp, so that root-rotate (which reads
#                the name) and the README snippet (which runs find -mtime +30)
#                agree on what is due.
#                Each archive holds NESTED writable nested subvolumes: every
#                third one sits inside the one before it (depth 2), the others
#                directly in the archive (depth 1, under var/lib/).
#                The first READONLY (default 0) due archives additionally hold a
#                docker-like tree: a read-only subvolume (btrfs property set -ts
#                ... ro true) with a subvolume inside it. The README snippet
#                cannot delete those (EROFS) and leaves the archive behind, so
#                the timed benchmark populations use READONLY=0.
#
# The image is left unmounted and detached (the transaction is committed by
# the unmount). Only the loop device and the mount this script created are
# cleaned up on exit, also on failure. Needs root, btrfs-progs, util-linux.
#
# Environment: GENFS_SIZE (image size for truncate, default 1G).

set -euo pipefail

usage() {
    echo "usage: $0 IMAGE ARCHIVES NESTED DUE [READONLY]" >&2
    exit 2
}

[[ $# -ge 4 && $# -le 5 ]] || usage
image=$1
archives=$2
nested=$3
due=$4
readonly_trees=${5:-0}
for n in "$archives" "$nested" "$due" "$readonly_trees"; do
    [[ $n =~ ^[0-9]+$ ]] || usage
done
if ((due > archives)); then
    echo "genfs: DUE ($due) > ARCHIVES ($archives)" >&2
    exit 2
fi
if ((readonly_trees > due)); then
    echo "genfs: READONLY ($readonly_trees) > DUE ($due)" >&2
    exit 2
fi
if [[ -e $image && ! -f $image ]]; then
    echo "genfs: $image exists and is not a regular file" >&2
    exit 2
fi

loopdev=
mnt=
cleanup() {
    local rc=$?
    if [[ -n $mnt ]]; then
        if mountpoint -q "$mnt"; then
            umount "$mnt" || rc=1
        fi
        rmdir "$mnt" || true
    fi
    if [[ -n $loopdev ]]; then
        losetup -d "$loopdev" || rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

truncate -s 0 "$image"
truncate -s "${GENFS_SIZE:-1G}" "$image"
mkfs.btrfs -q -f "$image" >/dev/null
loopdev=$(losetup --find --show "$image")
mnt=$(mktemp -d /tmp/genfs.XXXXXX)
mount -o subvolid=5 "$loopdev" "$mnt"

subvol() { btrfs -q subvolume create "$1" >/dev/null; }

# The live root, @nix and @persist.
subvol "$mnt/@root"
mkdir -p "$mnt/@root/etc" "$mnt/@root/var/log" "$mnt/@root/tmp" "$mnt/@root/root"
echo "0123456789abcdef0123456789abcdef" >"$mnt/@root/etc/machine-id"
for f in 1 2 3 4 5 6 7 8; do
    echo "log line $f" >"$mnt/@root/var/log/boot.$f.log"
    echo "scratch $f" >"$mnt/@root/tmp/scratch.$f"
done
echo "history" >"$mnt/@root/root/.bash_history"

subvol "$mnt/@nix"
mkdir -p "$mnt/@nix/store/0000000000000000000000000000000-hello/bin" "$mnt/@nix/var/nix/db"
echo "#!/bin/sh" >"$mnt/@nix/store/0000000000000000000000000000000-hello/bin/hello"
echo "db" >"$mnt/@nix/var/nix/db/db.sqlite"

subvol "$mnt/@persist"
mkdir -p "$mnt/@persist/etc/ssh" "$mnt/@persist/home/user"
echo "key" >"$mnt/@persist/etc/ssh/ssh_host_ed25519_key"
echo "notes" >"$mnt/@persist/home/user/notes.txt"

subvol "$mnt/@old_roots"

now=$(date +%s)
day=86400
kept=$((archives - due))
for ((j = 0; j < archives; j++)); do
    if ((j < due)); then
        # 40 days + one day per position, oldest first.
        age=$(((40 + due - 1 - j) * day + 17 * j))
    else
        # Spread from 28 days down to 1 hour.
        k=$((j - due))
        span=$((28 * day - 3600))
        if ((kept > 1)); then
            age=$((28 * day - k * span / (kept - 1)))
        else
            age=3600
        fi
    fi
    epoch=$((now - age))
    stamp=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
    a="$mnt/@old_roots/$stamp"
    if [[ -e $a ]]; then
        echo "genfs: duplicate stamp $stamp" >&2
        exit 1
    fi
    subvol "$a"
    mkdir -p "$a/etc" "$a/var/log" "$a/var/lib"
    echo "archive $j" >"$a/etc/hostname"
    echo "log of archive $j" >"$a/var/log/boot.log"
    prev=
    for ((n = 0; n < nested; n++)); do
        if ((n % 3 == 2)); then
            s="$prev/sub$n"
        else
            s="$a/var/lib/sub$n"
        fi
        subvol "$s"
        echo "nested $n of archive $j" >"$s/data"
        prev=$s
    done
    if ((j < readonly_trees)); then
        d="$a/var/lib/docker/btrfs/subvolumes"
        mkdir -p "$d"
        subvol "$d/layer"
        echo "layer" >"$d/layer/data"
        subvol "$d/layer/inner"
        echo "inner" >"$d/layer/inner/data"
        btrfs property set -ts "$d/layer" ro true
    fi
    touch -d "@$epoch" "$a"
done

total=$(btrfs subvolume list "$mnt" | wc -l)
echo "genfs: $image: $archives archives x $nested nested, $due due, $readonly_trees read-only trees; $total subvolumes" >&2
