# shellcheck shell=bash
# Shared helper for the VM scenarios: kernel cache, initramfs, disk images,
# booting qemu (TCG), asserting on the image and on the console.
# Sourced by vm-tests/scenarios/*.sh, vm-tests/run and vm-tests/demo.
set -uo pipefail

VMT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$VMT/.." && pwd)
CACHE=${XDG_CACHE_HOME:-/var/cache}/root-rotate-vm
TRIPLE=x86_64-unknown-linux-gnu
# Disk and memory sizes are small on purpose: TCG is slow, images are sparse.
RR_VM_MEM=${RR_VM_MEM:-384}
RR_VM_TIMEOUT=${RR_VM_TIMEOUT:-180}

# RR_VM_QUIET=1 (the demo) keeps only errors and failed checks.
log() {
	case "${RR_VM_QUIET:-0}:$*" in 1:error* | 1:FAILED* | 0:*) printf '  [%s] %s\n' "${SCEN:-vm}" "$*" >&2 ;; esac
}
die() {
	log "error: $*"
	exit 1
}

# --- host prerequisites -------------------------------------------------

rr_need_tools() {
	[ "$(id -u)" = 0 ] || die "must run as root (loop devices, mounts)"
	local want=() t
	for t in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static \
		mkfs.btrfs:btrfs-progs cpio:cpio depmod:kmod; do
		command -v "${t%%:*}" >/dev/null || want+=("${t#*:}")
	done
	# The dynamic busybox has no static guarantee; the initramfs needs the static one.
	[ -e /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
		want+=(busybox-static)
	if [ ${#want[@]} -gt 0 ]; then
		log "installing ${want[*]}"
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq "${want[@]}" >&2; }; then
			die "apt-get install ${want[*]} failed"
		fi
	fi
}

# Debian's cloud kernel, extracted (not installed) into the cache, with a
# real modules.dep. Sets KVER, VMLINUZ, KROOT.
rr_kernel() {
	mkdir -p "$CACHE"
	exec 8>"$CACHE/.lock"
	flock 8 # concurrent scenarios share one cache
	local real deb
	if [ ! -s "$CACHE/kernel.ver" ] || [ ! -f "$CACHE/kroot/boot/vmlinuz-$(cat "$CACHE/kernel.ver")" ]; then
		real=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
		[ -n "$real" ] || { apt-get update -qq && real=$(apt-cache depends linux-image-cloud-amd64 |
			awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
		[ -n "$real" ] || die "cannot resolve linux-image-cloud-amd64"
		rm -rf "$CACHE/dl" "$CACHE/kroot" && mkdir -p "$CACHE/dl"
		(cd "$CACHE/dl" && apt-get download "$real" >/dev/null 2>&1) || die "apt-get download $real failed"
		deb=$(ls "$CACHE"/dl/*.deb)
		dpkg-deb -x "$deb" "$CACHE/kroot" || die "dpkg-deb -x failed"
		basename "$(ls "$CACHE"/kroot/boot/vmlinuz-*)" | sed 's/^vmlinuz-//' >"$CACHE/kernel.ver"
		depmod -b "$CACHE/kroot" "$(cat "$CACHE/kernel.ver")" || die "depmod failed"
	fi
	KVER=$(cat "$CACHE/kernel.ver")
	KROOT=$CACHE/kroot
	VMLINUZ=$KROOT/boot/vmlinuz-$KVER
	exec 8>&-
}

# --- binaries -------------------------------------------------------------

# rr_binary release|fault: path of the static binary, built if missing.
# RR_BIN / RR_FAULT_BIN override (e.g. to test a binary built elsewhere).
rr_binary() {
	local kind=$1 dir bin
	if [ "$kind" = fault ]; then
		[ -n "${RR_FAULT_BIN:-}" ] && { echo "$RR_FAULT_BIN"; return; }
		dir=$REPO/target/fault
	else
		[ -n "${RR_BIN:-}" ] && { echo "$RR_BIN"; return; }
		dir=$REPO/target
	fi
	bin=$dir/$TRIPLE/release/root-rotate
	if [ ! -x "$bin" ]; then
		log "building $kind binary (cargo build --release)"
		local feat=()
		[ "$kind" = fault ] && feat=(--features fault-injection)
		(cd "$REPO" && CARGO_TARGET_DIR=$dir cargo build --release --target "$TRIPLE" "${feat[@]}" >&2) ||
			die "cargo build ($kind) failed"
	fi
	echo "$bin"
}

# --- initramfs ------------------------------------------------------------

# rr_initramfs OUT BIN [baseline]: busybox + modules + BIN (+ the snippet
# baseline with btrfs-progs and its libraries). Uncompressed cpio: TCG
# decompresses slowly and the image lives in RAM anyway.
rr_initramfs() {
	local out=$1 bin=$2 variant=${3:-} d m f
	d=$(mktemp -d "${TMPDIR:-/tmp}/rr-initrd.XXXXXX")
	mkdir -p "$d"/{bin,dev,proc,sys,sysroot,run,etc,lib/modules/"$KVER"}
	cp /bin/busybox "$d/bin/busybox"
	for f in $(busybox --list); do [ -e "$d/bin/$f" ] || ln -s busybox "$d/bin/$f"; done
	for m in virtio_pci virtio_blk btrfs; do
		modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
	done | sort -u | while read -r f; do
		mkdir -p "$d/${f#"$KROOT"/}" && rmdir "$d/${f#"$KROOT"/}"
		cp "$f" "$d/${f#"$KROOT"/}"
	done
	cp "$KROOT/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$d/lib/modules/$KVER/"
	depmod -b "$d" "$KVER" || die "depmod (initramfs) failed"
	cp "$bin" "$d/bin/root-rotate"
	cp "$VMT/lib/init" "$d/init"
	chmod 755 "$d/init" "$d/bin/root-rotate"
	if [ "$variant" = baseline ]; then
		local snip=$REPO/benches/snippet-baseline.sh
		[ -f "$snip" ] || die "missing $snip (the teammate's snippet baseline)"
		install -m 755 "$snip" "$d/bin/snippet-baseline.sh"
		# btrfs-progs is dynamic: bring its loader and libraries along.
		cp "$(command -v btrfs)" "$d/bin/btrfs"
		ldd "$(command -v btrfs)" | grep -o '/[^ ]*' | while read -r f; do
			mkdir -p "$d$(dirname "$f")" && cp -L "$f" "$d$f"
		done
	fi
	(cd "$d" && find . | cpio -o -H newc --quiet) >"$out" || die "cpio failed"
	rm -rf "$d"
}

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

# --- booting ----------------------------------------------------------------

# qemu_argv CMDLINE [QEMU ARGS...]: the qemu command line, in QARGS.
# TCG only (no KVM here), one vCPU, no network, console on stdio.
qemu_argv() {
	local cmdline=$1 drive="file=$IMG,format=raw,if=virtio,cache=writeback"
	shift
	QARGS=(qemu-system-x86_64 -nodefaults -no-user-config -machine "pc,accel=tcg"
		-m "$RR_VM_MEM" -smp 1 -display none -serial stdio -no-reboot
		-kernel "$VMLINUZ" -initrd "${BOOT_INITRD:-$INITRD}"
		-append "console=ttyS0 panic=-1 quiet $cmdline" -drive "$drive" "$@")
}

# vm_boot NAME CMDLINE [QEMU ARGS...]: one boot of $IMG with $INITRD (or
# $BOOT_INITRD), console to $LOGDIR/$SCEN-NAME.log (path in $LOG). Returns
# qemu's status; 124 means the boot hung past RR_VM_TIMEOUT and was killed.
# RR_VM_CONSOLE=1 also shows the console live.
vm_boot() {
	local name=$1 t0 rc
	shift
	LOG=$LOGDIR/$SCEN-$name.log
	t0=$(date +%s.%N)
	log "boot $name: $*"
	qemu_argv "$@"
	if [ "${RR_VM_CONSOLE:-0}" = 1 ]; then
		timeout -k 5 "$RR_VM_TIMEOUT" "${QARGS[@]}" </dev/null 2>&1 | tee "$LOG" >&2
		rc=${PIPESTATUS[0]}
	else
		timeout -k 5 "$RR_VM_TIMEOUT" "${QARGS[@]}" </dev/null >"$LOG" 2>&1
		rc=$?
	fi
	BOOT_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	log "boot $name: qemu exit $rc after ${BOOT_SECS}s"
	return "$rc"
}

# vm_boot_kill NAME PATTERN DELAY CMDLINE [QEMU ARGS...]: like vm_boot, but
# SIGKILL qemu DELAY seconds after PATTERN shows on the console: the power
# cut that a fault-injection point cannot model (any instruction, any I/O).
vm_boot_kill() {
	local name=$1 pat=$2 delay=$3 pid i=0
	shift 3
	LOG=$LOGDIR/$SCEN-$name.log
	log "boot $name (kill ${delay}s after '$pat'): $*"
	qemu_argv "$@"
	"${QARGS[@]}" </dev/null >"$LOG" 2>&1 &
	pid=$!
	until grep -q "$pat" "$LOG" 2>/dev/null; do
		sleep 0.02
		i=$((i + 1))
		if [ $i -gt 6000 ] || ! kill -0 "$pid" 2>/dev/null; then break; fi
	done
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	echo "rr-host: qemu killed" >>"$LOG"
}

# Console parsers; they read the log of the last boot, $LOG.
# kv KEY: value of the last "rr-stage2: KEY=value" console line.
kv() { tr -d '\r' <"$LOG" | sed -n "s/^rr-stage2: $1=//p" | tail -n 1; }
# kmsg_lines: the stage-1 kmsg dump, "<lvl>[ t] text".
kmsg_lines() { tr -d '\r' <"$LOG" | sed -n 's/^rr-kmsg: //p'; }
# kmsg_span BEGIN END: seconds between the first kmsg lines matching
# the two patterns (from their timestamps).
kmsg_span() {
	kmsg_lines | awk -v b="$1" -v e="$2" '
		{ t = $0; sub(/^<[0-9]+>\[ */, "", t); sub(/\].*/, "", t) }
		bt == "" && $0 ~ b { bt = t }
		bt != "" && et == "" && $0 ~ e { et = t }
		END { if (bt != "" && et != "") printf "%.3f\n", et - bt }'
}
# kmsg_count LEVEL [PATTERN]: root-rotate lines at syslog LEVEL (3 error,
# 4 warning, 6 info; the facility bits of "<11>" are ignored).
kmsg_count() {
	kmsg_lines | awk -v l="$1" -v p="${2:-}" '
		/root-rotate:/ { v = $0; sub(/^</, "", v); sub(/>.*/, "", v)
		  if (v % 8 == l && (p == "" || $0 ~ p)) n++ }
		END { print n + 0 }'
}
rotate_rc() { kmsg_lines | sed -n 's/.*rr-init: rotate end rc=//p' | tail -n 1; }
rotate_secs() { kmsg_span 'rr-init: rotate begin' 'rr-init: rotate end'; }
# on_log FILE CMD...: run a parser against another boot's log.
on_log() {
	local LOG=$1
	shift
	"$@"
}
stage2_done() { tr -d '\r' <"$LOG" | grep -q '^rr-stage2: done'; }

# --- assertions and result ---------------------------------------------------

FAILS=()
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then log "ok: $what"; else
		log "FAILED: $what"
		FAILS+=("$what")
	fi
}
not() { ! "$@"; }
eq() { [ "$1" = "$2" ] || { log "  got '$1', want '$2'"; return 1; }; }
# result SUMMARY: the scenario's single result line; exit status follows.
result() {
	img_umount
	if [ ${#FAILS[@]} -eq 0 ]; then
		echo "RESULT $SCEN PASS $*"
		exit 0
	fi
	echo "RESULT $SCEN FAIL ${#FAILS[@]} check(s): $(IFS=';'; echo "${FAILS[*]}") (logs: $LOGDIR)"
	exit 1
}

# scenario_init NAME: temp dir, kernel, release initramfs, fresh image.
# The EXIT trap unmounts and detaches only what this scenario created.
scenario_init() {
	SCEN=$1
	rr_need_tools
	T=$(mktemp -d "${TMPDIR:-/tmp}/rr-vm-$SCEN.XXXXXX")
	LOGDIR=${RR_VM_LOGDIR:-$T/logs}
	mkdir -p "$LOGDIR"
	# Keep the temp dir (image, logs) of a failed scenario for debugging.
	trap 'img_umount; [ ${#FAILS[@]} -gt 0 ] || [ "${RR_VM_KEEP:-0}" = 1 ] || rm -rf "$T"' EXIT
	trap 'exit 130' INT TERM # so that the EXIT trap cleans up on ^C too
	rr_kernel
	IMG=$T/disk.img
	INITRD=$T/initrd.cpio
	BIN=$(rr_binary release) || exit 1
	rr_initramfs "$INITRD" "$BIN"
	img_create "$IMG"
}

# What stage 2 sees in a blank root: only the mount points stage 1 made.
BLANK_DIRS="/dev /etc /nix /persist /proc /sys /var /var/lib /var/lib/data"
# assert_boot NAME [ETC]: the boot rotated (rc 0), reached stage 2 with a
# blank root, /persist complete, and /etc/boot-* at start equal to ETC.
assert_boot() {
	local n=$1
	check "$n: stage 2 reached and powered off" stage2_done
	check "$n: rotation exit 0" eq "$(rotate_rc)" 0
	check "$n: no files left in the new root" eq "$(kv root-files)" none
	check "$n: no directories left in the new root" eq "$(kv root-dirs)" "$BLANK_DIRS"
	check "$n: /etc/boot-* at start" eq "$(kv etc)" "${2:-none}"
	check "$n: nothing missing from /persist" eq "$(kv persist-missing)" none
	check "$n: no root-rotate error lines" eq "$(kmsg_count 3)" 0
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

# paired_boot N: boot N of root-rotate on $IMG and of the snippet baseline
# on $BASE_IMG, back to back so both see the same machine load. Sets
# RR_SECS/SN_SECS (rotation time from kmsg) and RR_LOG/SN_LOG.
paired_boot() {
	local n=$1
	vm_boot "rr-boot$n" "rr.boot=$n"
	# shellcheck disable=SC2034 # read by the callers
	RR_LOG=$LOG RR_SECS=$(rotate_secs)
	IMG=$BASE_IMG BOOT_INITRD=$BASE_INITRD vm_boot "snippet-boot$n" "rr.boot=$n rr.rotator=baseline"
	# shellcheck disable=SC2034
	SN_LOG=$LOG SN_SECS=$(rotate_secs)
	LOG=$RR_LOG
}
# paired_init TOTAL DUE NESTED: baseline initramfs and a second image, both
# images seeded alike.
paired_init() {
	BASE_INITRD=$T/initrd-baseline.cpio
	BASE_IMG=$T/disk-baseline.img
	rr_initramfs "$BASE_INITRD" "$BIN" baseline
	img_create "$BASE_IMG"
	local i
	for i in "$IMG" "$BASE_IMG"; do
		img_mount "$i"
		seed_backlog "$@"
		img_umount
	done
}
# median A B C...
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { m = int((NR + 1) / 2); print (NR % 2 ? v[m] : (v[m] + v[m + 1]) / 2) }'
}
