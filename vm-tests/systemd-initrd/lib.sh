# shellcheck shell=bash
# systemd stage 1 for the VM scenarios: an initramfs built by Debian 12's
# dracut from the host's systemd 252 (cached), with root-rotate.service as
# NixOS renders it (rendered-units.json); a GPT disk laid out like the
# module's disko example; console parsers for what ./report prints.
# Sourced by vm-tests/scenarios/systemd-*.sh after lib/harness.sh.

SDI=$VMT/systemd-initrd
# The filesystem UUID, known in advance (sd_scenario_init makes one per
# scenario: two file systems with one UUID cannot coexist on the host): the
# test's own mounts (units/sysroot-*.mount) and the "missing device" boot's
# root= use it, so they do not depend on the partition label.
FS_UUID=''
# Normal boots mount / the way NixOS does: @root of the disk-main-root partition.
# init= runs the busybox stage 2 on @nix (vm-tests/lib/stage2): the root is blank.
# show_status: systemd's "Starting/Finished" lines on the console, for the
# log (the kernel's own messages stay quiet).
# shellcheck disable=SC2034 # used by the scenarios
SD_CMDLINE="root=PARTLABEL=disk-main-root rootfstype=btrfs rootflags=subvol=@root rw init=/nix/rr-test/stage2"
SD_CMDLINE+=" systemd.show_status=1 systemd.log_color=0"

# sd_need_tools: rr_need_tools plus dracut, systemd and sfdisk. Only
# dracut-core: the "dracut" package conflicts with initramfs-tools and
# would remove the host's own initramfs generator.
sd_need_tools() {
	rr_need_tools
	local want=() t
	for t in dracut:dracut-core sfdisk:fdisk mkswap:util-linux jq:jq; do
		command -v "${t%%:*}" >/dev/null || want+=("${t#*:}")
	done
	[ -x /lib/systemd/systemd ] || want+=(systemd)
	if [ ${#want[@]} -gt 0 ]; then
		log "installing ${want[*]}"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${want[@]}" >&2; } ||
			die "apt-get install ${want[*]} failed"
	fi
}

# --- initramfs ------------------------------------------------------------

# The dracut image holds no test files: those go into an overlay cpio that
# sd_initrd appends (the kernel unpacks concatenated archives in order), so
# code changes do not invalidate the cache. --no-compress: TCG decompresses
# slowly. journalctl is for ./report.
DRACUT_ARGS=(--no-hostonly --no-hostonly-cmdline --no-early-microcode --no-compress --reproducible
	-m "systemd systemd-initrd dracut-systemd udev-rules base fs-lib rootfs-block btrfs resume kernel-modules"
	--drivers "virtio_pci virtio_blk btrfs"
	--install /usr/bin/journalctl)

# sd_base_initrd: path of the cached dracut image (built if missing), in
# SD_BASE. The key covers everything dracut copies from the host.
sd_base_initrd() {
	local key t0
	key=$({
		printf '%s\n' "$KVER" "${DRACUT_ARGS[@]}"
		dpkg-query -W dracut-core systemd udev libsystemd-shared btrfs-progs kmod bash 2>/dev/null
	} | sha256sum | cut -c1-16)
	SD_BASE=$CACHE/systemd-initrd-$key.img
	exec 8>"$CACHE/.lock"
	flock 8 # concurrent scenarios share one cache
	if [ ! -s "$SD_BASE" ]; then
		t0=$SECONDS
		rm -f "$CACHE"/systemd-initrd-*.img # older inputs
		log "building the systemd initramfs with dracut (cached as $SD_BASE)"
		dracut --force "${DRACUT_ARGS[@]}" --kver "$KVER" --kmoddir "$KROOT/lib/modules/$KVER" \
			"$SD_BASE.tmp" >"$CACHE/dracut.log" 2>&1 || {
			rm -f "$SD_BASE.tmp"
			exec 8>&-
			die "dracut failed, see $CACHE/dracut.log"
		}
		mv "$SD_BASE.tmp" "$SD_BASE"
		log "dracut built it in $((SECONDS - t0))s"
	fi
	exec 8>&-
}

# sd_initrd VARIANT OUT [FILE=CONTENT...]: the dracut image plus an overlay
# with the static binary, root-rotate.service of VARIANT (continue|fail) and
# the test-only units; FILE=CONTENT adds a file (for one boot's tweak).
sd_initrd() {
	local variant=$1 out=$2 d unit exe t kv
	shift 2
	d=$(mktemp -d "$T/overlay.XXXXXX")
	mkdir -p "$d/usr/bin" "$d/etc/systemd/system"
	install -m 755 "$BIN" "$d/usr/bin/root-rotate"
	install -m 755 "$SDI/report" "$d/usr/bin/rr-report"
	unit=$(jq -er ".$variant.unit" "$SDI/rendered-units.json") || die "no $variant unit in rendered-units.json"
	exe=$(jq -er ".$variant.exe" "$SDI/rendered-units.json") || die "no $variant exe"
	# The only change to the rendered text: ExecStart names the binary by its
	# Nix store path; here it lies at /usr/bin/root-rotate.
	printf '%s\n' "${unit//"$exe"//usr/bin/root-rotate}" >"$d/etc/systemd/system/root-rotate.service"
	# RR_SD_UNIT_EDIT (a sed script, e.g. '/^After=/d') breaks the unit on
	# purpose, to see the checks fail; never set in the test runs.
	if [ -n "${RR_SD_UNIT_EDIT:-}" ]; then
		log "editing root-rotate.service with sed '$RR_SD_UNIT_EDIT' (RR_SD_UNIT_EDIT)"
		sed -i -e "$RR_SD_UNIT_EDIT" "$d/etc/systemd/system/root-rotate.service" || die "bad RR_SD_UNIT_EDIT"
	fi
	# NixOS applies wantedBy/requiredBy as these symlinks, not via [Install].
	for t in $(jq -r ".$variant.wantedBy[]" "$SDI/rendered-units.json"); do
		mkdir -p "$d/etc/systemd/system/$t.wants"
		ln -s ../root-rotate.service "$d/etc/systemd/system/$t.wants/root-rotate.service"
	done
	for t in $(jq -r ".$variant.requiredBy[]" "$SDI/rendered-units.json"); do
		mkdir -p "$d/etc/systemd/system/$t.requires"
		ln -s ../root-rotate.service "$d/etc/systemd/system/$t.requires/root-rotate.service"
	done
	sd_test_units "$d/etc/systemd/system"
	for kv in "$@"; do
		mkdir -p "$(dirname "$d/${kv%%=*}")"
		printf '%s\n' "${kv#*=}" >"$d/${kv%%=*}"
	done
	sd_base_initrd
	{ cat "$SD_BASE" && (cd "$d" && find . | cpio -o -H newc --quiet -R 0:0); } >"$out" ||
		die "cannot write $out"
	rm -rf "$d"
}

# sd_test_units DIR: what is not root-rotate's (units/): the mounts stand in
# for NixOS's initrd fstab (neededForBoot /nix, /persist) and the
# impermanence bind mount; the reporters print what the host asserts on.
sd_test_units() {
	local s=$1 m
	for m in "$SDI"/units/*; do
		sed "s/@FS_UUID@/$FS_UUID/" "$m" >"$s/${m##*/}"
	done
	mkdir -p "$s/initrd-fs.target.requires" "$s/initrd.target.wants" "$s/emergency.target.wants"
	for m in nix persist var-lib-data; do
		ln -s "../sysroot-$m.mount" "$s/initrd-fs.target.requires/sysroot-$m.mount"
	done
	ln -s ../rr-report.service "$s/initrd.target.wants/rr-report.service"
	ln -s ../rr-emergency.service "$s/emergency.target.wants/rr-emergency.service"
}

# --- disk image -----------------------------------------------------------

# sd_img_create IMG: GPT with disk-main-swap (swap, 160 MiB, also for a
# hibernation image) and disk-main-root (Btrfs: @root @nix @persist
# @old_roots); the busybox stage 2 on @nix as in the busybox scenarios.
sd_img_create() {
	local img=$1 f
	rm -f "$img" && truncate -s "${RR_IMG_SIZE:-640M}" "$img"
	sfdisk -q "$img" >/dev/null <<-EOF || die "sfdisk failed"
		label: gpt
		size=160MiB, type=S, name=disk-main-swap
		type=L, name=disk-main-root
	EOF
	sd_loop "$img" 1
	mkswap -q "$LOOPDEV" >/dev/null || die "mkswap failed"
	sd_unloop
	sd_loop "$img" 2
	mkfs.btrfs -q -f -U "$FS_UUID" "$LOOPDEV" >/dev/null 2>&1 || die "mkfs.btrfs failed"
	sd_unloop
	sd_mount "$img"
	for f in @root @nix @persist @old_roots; do btrfs -q subvolume create "$MNT/$f" >/dev/null; done
	mkdir -p "$MNT/@nix/rr-test/bin" "$MNT/@persist/var/lib/data"
	cp /bin/busybox "$MNT/@nix/rr-test/busybox"
	for f in $(busybox --list); do ln -s ../busybox "$MNT/@nix/rr-test/bin/$f"; done
	install -m 755 "$VMT/lib/stage2" "$MNT/@nix/rr-test/stage2"
	img_umount
}

# sd_loop IMG N: a loop device over partition N only, in LOOPDEV (the
# harness's img_umount and EXIT trap detach it).
sd_loop() {
	local start size
	start=$(sfdisk -J "$1" | jq -e ".partitiontable.partitions[$(($2 - 1))].start") || die "no partition $2"
	size=$(sfdisk -J "$1" | jq -e ".partitiontable.partitions[$(($2 - 1))].size")
	LOOPDEV=$(losetup -f --show -o $((start * 512)) --sizelimit $((size * 512)) "$1") || die "losetup failed"
}

# sd_unloop: detach a loop device of sd_loop that is not mounted.
sd_unloop() {
	[ -n "$LOOPDEV" ] && [ -z "$MNT" ] || return 0
	losetup -d "$LOOPDEV"
	LOOPDEV=''
}

# sd_mount IMG [OPTS]: like img_mount, for the Btrfs partition.
sd_mount() {
	[ -z "$LOOPDEV" ] || die "image already mounted"
	sd_loop "$1" 2
	MNT=$(mktemp -d "${TMPDIR:-/tmp}/rr-mnt.XXXXXX")
	mount -t btrfs -o "subvolid=5${2:+,$2}" "$LOOPDEV" "$MNT" || {
		losetup -d "$LOOPDEV"
		LOOPDEV=''
		die "mount of $1 failed"
	}
}

# sd_scenario_init NAME: like scenario_init, with the GPT image. The
# initramfs is built per variant by the scenario (sd_initrd).
sd_scenario_init() {
	SCEN=$1
	sd_need_tools
	T=$(mktemp -d "${TMPDIR:-/tmp}/rr-vm-$SCEN.XXXXXX")
	LOGDIR=${RR_VM_LOGDIR:-$T/logs}
	mkdir -p "$LOGDIR"
	trap 'sd_unloop; img_umount; [ ${#FAILS[@]} -gt 0 ] || [ "${RR_VM_KEEP:-0}" = 1 ] || rm -rf "$T"' EXIT
	trap 'exit 130' INT TERM
	rr_kernel
	IMG=$T/disk.img
	BIN=$(rr_binary release) || exit 1
	FS_UUID=$(cat /proc/sys/kernel/random/uuid)
	sd_img_create "$IMG"
}

# --- console parsers and checks (./report's lines in $LOG) ----------------

# sdv ALIAS PROP: a property ./report printed ("rr-sd: ALIAS PROP=value").
sdv() { tr -d '\r' <"$LOG" | sed -n "s/^rr-sd: $1 $2=//p" | tail -n 1; }
# sd_journal: the initrd journal lines ./report printed.
sd_journal() { tr -d '\r' <"$LOG" | sed -n 's/^rr-journal: //p'; }
journal_has() { sd_journal | grep -qF "$1"; }
# unit_journal_has [-err] TEXT: a line of `journalctl -u root-rotate -b`
# (at error priority with -err), as root-rotate logged it.
unit_journal_has() {
	local tag=rr-unit-journal
	[ "$1" = -err ] && { tag=rr-unit-journal-err; shift; }
	tr -d '\r' <"$LOG" | sed -n "s/^$tag: //p" | grep -qF "$1"
}
# after_has / before_has UNIT: UNIT is in `systemctl list-dependencies
# --after` / `--before root-rotate.service`.
after_has() { tr -d '\r' <"$LOG" | sed -n 's/^rr-sd-after: *//p' | grep -qxF "$1"; }
before_has() { tr -d '\r' <"$LOG" | sed -n 's/^rr-sd-before: *//p' | grep -qxF "$1"; }
reported() { tr -d '\r' <"$LOG" | grep -q "^rr-sd: done=$1"; }
# sd_uptime: kernel uptime (s) when the report ran, i.e. stage 1's duration.
sd_uptime() { tr -d '\r' <"$LOG" | sed -n 's/^rr-sd: uptime=//p' | tail -n 1; }
# before A B: monotonic timestamps (us), both set, A not later than B.
before() {
	if [ "${1:-0}" -gt 0 ] && [ "${2:-0}" -ge "$1" ]; then return 0; fi
	log "  got '$1' then '$2' (want both set and in this order)"
	return 1
}

# sd_assert_rotated NAME: root-rotate.service ran once the device unit was
# plugged, succeeded, and exited before sysroot.mount started; and systemd's
# graph orders it so (in this run sysroot.mount also waits for
# systemd-fsck-root.service, which alone usually takes longer than root-rotate).
sd_assert_rotated() {
	local n=$1
	check "$n: initrd report printed" reported boot
	check "$n: root-rotate.service is ordered after its device unit" \
		after_has 'dev-disk-by\x2dpartlabel-disk\x2dmain\x2droot.device'
	check "$n: root-rotate.service is ordered before sysroot.mount" before_has sysroot.mount
	check "$n: root-rotate.service succeeded" \
		eq "$(sdv root-rotate Result) $(sdv root-rotate ExecMainStatus)" "success 0"
	check "$n: root-rotate started after the device unit was plugged" \
		before "$(sdv device ActiveEnterTimestampMonotonic)" "$(sdv root-rotate ExecMainStartTimestampMonotonic)"
	check "$n: sysroot.mount started after root-rotate exited" \
		before "$(sdv root-rotate ExecMainExitTimestampMonotonic)" "$(sdv sysroot InactiveExitTimestampMonotonic)"
	check "$n: journalctl -u root-rotate shows the rotation" unit_journal_has 'rotate: archived @root as @old_roots/'
}

# What a systemd 252 stage 1 leaves in an empty root: mount points (the API
# file systems it moves over, the test's mounts) and base directories.
SD_BLANK_DIRS="/dev /etc /mnt /nix /persist /proc /root /run /sys /usr /var /var/lib /var/lib/data"
# sd_assert_blank NAME: switch-root happened; stage 2 found a blank root and
# /persist complete.
sd_assert_blank() {
	check "$1: switched root, stage 2 ran" stage2_done
	check "$1: no files in the new root" eq "$(kv root-files)" none
	check "$1: no directories but mount points in the new root" eq "$(kv root-dirs)" "$SD_BLANK_DIRS"
	check "$1: nothing missing from /persist" eq "$(kv persist-missing)" none
}
