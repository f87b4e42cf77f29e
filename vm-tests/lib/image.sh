# shellcheck shell=bash
# Disk images for the VM scenarios: create, loop-mount, list and seed
# archives. Sourced by harness.sh.

# --- disk image -----------------------------------------------------------

# img_create IMG: fresh Btrfs with @root @nix @persist and the stage-2
# program on @nix. No @old_roots: root-rotate must create it.
img_create() {
	local img=$1 f
	rm -f "$img" && truncate -s "${RR_IMG_SIZE:-512M}" "$img"
	mkfs.btrfs -q -f "$img" >/dev/null || die "mkfs.btrfs failed"
	img_mount "$img"
	for f in @root @nix @persist; do btrfs -q subvolume create "$MNT/$f" >/dev/null; done
	mkdir -p "$MNT/@nix/rr-test/bin"
	cp /bin/busybox "$MNT/@nix/rr-test/busybox"
	for f in $(busybox --list); do ln -s ../busybox "$MNT/@nix/rr-test/bin/$f"; done
	install -m 755 "$VMT/lib/stage2" "$MNT/@nix/rr-test/stage2"
	img_umount
}

# img_mount IMG [OPTS]: mount the top level (subvolid=5) at $MNT through a
# loop device we create and remember; img_umount undoes exactly that.
MNT='' LOOPDEV=''
img_mount() {
	[ -z "$LOOPDEV" ] || die "image already mounted"
	LOOPDEV=$(losetup -f --show "$1") || die "losetup failed"
	MNT=$(mktemp -d "${TMPDIR:-/tmp}/rr-mnt.XXXXXX")
	mount -t btrfs -o "subvolid=5${2:+,$2}" "$LOOPDEV" "$MNT" || {
		losetup -d "$LOOPDEV"
		LOOPDEV=''
		die "mount of $1 failed"
	}
}
img_umount() {
	[ -n "$LOOPDEV" ] || return 0
	umount "$MNT" 2>/dev/null || umount -l "$MNT"
	rmdir "$MNT"
	losetup -d "$LOOPDEV" 2>/dev/null
	LOOPDEV='' MNT=''
}

# Archives as the host sees them: subvolumes (inode 256) directly in
# @old_roots, named like a stamp. Foreign entries are not listed.
STAMP_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z(-[0-9]{4})?$'
SNIPPET_RE='^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}_[0-9]{2}:[0-9]{2}:[0-9]{2}$'
img_archives() {
	local e
	[ -d "$MNT/@old_roots" ] || return 0
	for e in "$MNT/@old_roots"/*; do
		if [ -d "$e" ] && [ ! -L "$e" ] && [ "$(stat -c %i "$e")" = 256 ]; then
			basename "$e"
		fi
	done | grep -E "$STAMP_RE|$SNIPPET_RE"
}
# arch_has / arch_lacks NAME: membership in ARCH (filled from img_archives).
ARCH=()
arch_has() { printf '%s\n' "${ARCH[@]}" | grep -qxF "$1"; }
arch_lacks() { ! arch_has "$1"; }
# stamp DAYS_AGO [FORMAT]: an archive name N days before the host clock.
stamp() { date -u -d "-$1 days" "+${2:-%Y-%m-%dT%H:%M:%SZ}"; }
# seed_archive NAME [NESTED...]: a fake archived root with a file and
# optional nested subvolumes (paths relative to it).
seed_archive() {
	local a=$MNT/@old_roots/$1 n
	shift
	[ -d "$MNT/@old_roots" ] || btrfs -q subvolume create "$MNT/@old_roots" >/dev/null
	btrfs -q subvolume create "$a" >/dev/null || die "cannot seed $a"
	mkdir -p "$a/etc" && echo seeded >"$a/etc/seeded"
	for n in "$@"; do
		mkdir -p "$(dirname "$a/$n")"
		btrfs -q subvolume create "$a/$n" >/dev/null || die "cannot seed $a/$n"
	done
}

# renew_root: recreate the (blank) live root after seeding archives. An
# archive keeps the subvolume ID its root got when created, and keep-at-least
# goes by ID; on a real machine the live root is always newer than every
# archive, so make it so here too.
renew_root() {
	btrfs -q subvolume delete "$MNT/@root" >/dev/null && btrfs -q subvolume create "$MNT/@root" >/dev/null
}

# seed_backlog TOTAL DUE NESTED: a history like bench's generated ones.
# Names in the snippet's format with matching mtimes, so root-rotate (by
# name) and the snippet (by mtime) find the same DUE archives due; the due
# ones get the lowest subvolume IDs, so keep-at-least does not interfere.
seed_backlog() {
	local total=$1 due=$2 nested=$3 i j age t a
	for i in $(seq 1 "$total"); do
		if [ "$i" -le "$due" ]; then
			age=$(((31 + due - i) * 86400 + 3600))
		else
			age=$(((total - i + 1) * 36000))
		fi
		t=$(($(date +%s) - age))
		a=$(date -u -d "@$t" +%Y-%m-%-d_%H:%M:%S)
		local subs=()
		for j in $(seq 1 "$nested"); do subs+=("var/lib/machines/m$j"); done
		seed_archive "$a" "${subs[@]}"
		touch -d "@$t" "$MNT/@old_roots/$a"
	done
}
