# shellcheck shell=bash
# Shared helper for the VM scenarios: host tools, kernel cache, binaries,
# initramfs, checks and the result line; image.sh (disk images) and boot.sh
# (qemu, console parsing) are sourced from here.
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

# shellcheck source=image.sh
. "$VMT/lib/image.sh"
# shellcheck source=boot.sh
. "$VMT/lib/boot.sh"
