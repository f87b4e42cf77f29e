#!/bin/sh
# snippet-baseline.sh DEVICE [MOUNTPOINT]
#
# BASELINE FOR MEASUREMENT ONLY. Do not use this to manage a real machine.
#
# A faithful reimplementation of the root-wipe snippet from the impermanence
# README (nix-community/impermanence, "btrfs subvolumes" section). It exists so
# that benches/bench can time root-rotate against the algorithm people actually
# paste into their configs. It reproduces the snippet's known bugs ON PURPOSE:
#   - the archive is named from the root's mtime in local time with
#     "%Y-%m-%-d_%H:%M:%S"; two boots in the same second `mv` the live root
#     INSIDE the previous archive instead of failing;
#   - what is due is decided by `find -mtime +30` (the archive's mtime, not its
#     name), and `find` also reports the archive directory itself if it is old;
#   - `btrfs subvolume list -o` on a plain directory lists the subvolumes of the
#     containing subvolume (this is how the snippet deletes @nix and @persist);
#   - nested subvolumes inside a read-only subvolume cannot be deleted (EROFS),
#     the snippet carries on and leaves the archive behind;
#   - one full `btrfs subvolume list` scan per subvolume at every level, which
#     makes a boot grow with (archives x nested) x (all subvolumes);
#   - errors are ignored (NixOS stage 1 runs hooks without `set -e`), so there is
#     deliberately no `set -e` here, and the exit status is that of `umount`.
#
# Differences from the README text, none of which change the algorithm:
#   - our subvolume names: @root and @old_roots instead of root and old_roots;
#   - the top-level volume is mounted explicitly with -o subvolid=5;
#   - the device and the mount point are arguments;
#   - POSIX sh instead of bash so that busybox ash in an initramfs runs it:
#     `[ ]` instead of `[[ ]]`, a literal newline instead of $'\n', and
#     `date -d @N` (busybox and GNU) instead of `date --date=@N`.
#
# Needs: btrfs (btrfs-progs), mount, umount, find, stat, date, cut, mkdir, mv.

set -u

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    echo "usage: $0 DEVICE [MOUNTPOINT]" >&2
    exit 2
fi
device=$1
mnt=${2:-/btrfs_tmp}

mkdir -p "$mnt"
mount -o subvolid=5 "$device" "$mnt"
if [ -e "$mnt/@root" ]; then
    mkdir -p "$mnt/@old_roots"
    timestamp=$(date -d "@$(stat -c %Y "$mnt/@root")" "+%Y-%m-%-d_%H:%M:%S")
    mv "$mnt/@root" "$mnt/@old_roots/$timestamp"
fi

delete_subvolume_recursively() {
    # Global on purpose, as in the snippet: IFS stays at newline afterwards.
    IFS='
'
    for i in $(btrfs subvolume list -o "$1" | cut -f 9- -d ' '); do
        delete_subvolume_recursively "$mnt/$i"
    done
    btrfs subvolume delete "$1"
}

# Unquoted command substitution on purpose: the snippet word-splits find's
# output (on IFS, which is newline once the function above has run once).
# shellcheck disable=SC2044
for i in $(find "$mnt/@old_roots/" -maxdepth 1 -mtime +30); do
    delete_subvolume_recursively "$i"
done

btrfs subvolume create "$mnt/@root"
umount "$mnt"
