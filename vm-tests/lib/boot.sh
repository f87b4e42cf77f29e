# shellcheck shell=bash
# Booting qemu (TCG) and reading the console; the paired root-rotate vs
# snippet boots of the baseline and the demo. Sourced by harness.sh.

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
