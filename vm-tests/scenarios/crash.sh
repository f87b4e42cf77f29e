#!/bin/bash
# crash: a power cut at every step of rotate and of rollback, then qemu
# killed at random moments. A test build (--features fault-injection) resets
# the machine without sync at point K of root_rotate.crash_at=K; K counts up
# until the run says "point K not reached": on a first boot (no @old_roots),
# on a later boot with due archives to prune, on a boot whose root is the
# default subvolume, and in a rescue rollback (marker written and renamed).
# After every cut, the next normal
# boot must come up on a usable blank @root with nothing missing from
# /persist (for rollback: blank, or the restored root if the cut came after
# the rollback was complete).
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init crash
FBIN=$(rr_binary fault) || exit 1
FAULT_INITRD=$T/initrd-fault.cpio
rr_initramfs "$FAULT_INITRD" "$FBIN"
# keep-at-least 1, so the seeded due archives are pruned (prune points).
KA=rr.keep_at_least=1
n=0 tried=0 notes=()

# seed_due: at least 2 due archives, each a read-only docker-style layer
# holding nested subvolumes, so that prune has points to cut at.
seed_due() {
	img_mount "$IMG"
	local due i
	due=$(img_archives | awk -v c="$(stamp 31)" '$0 < c' | wc -l)
	for ((i = due; i < 2; i++)); do
		local a
		a=$(stamp $((40 + RANDOM % 300)))
		[ -e "$MNT/@old_roots/$a" ] && continue
		seed_archive "$a" var/lib/docker/l1 var/lib/docker/l1/inner
		btrfs property set -ts "$MNT/@old_roots/$a/var/lib/docker/l1" ro true
	done
	renew_root
	img_umount
}
# seed_default_root: the root is the filesystem's default subvolume (a
# layout that boots without subvol=); rotate must move the default along.
seed_default_root() {
	img_mount "$IMG"
	renew_root
	btrfs -q subvolume set-default "$MNT/@root"
	img_umount
}
# default_is_root: the default subvolume is the current @root.
# shellcheck disable=SC2317 # called through check
default_is_root() {
	img_mount "$IMG" ro
	local def root
	def=$(btrfs subvolume get-default "$MNT" | awk '{print $2}')
	root=$(btrfs inspect-internal rootid "$MNT/@root")
	img_umount
	[ "$def" = "$root" ] || { log "default subvolume $def, root $root"; return 1; }
}
# latest_files: the files of the most recently archived root (highest
# subvolume ID), i.e. what a completed `rollback --latest` restores.
latest_files() {
	img_mount "$IMG" ro
	local a id best=0 pick=''
	for a in $(img_archives); do
		id=$(btrfs inspect-internal rootid "$MNT/@old_roots/$a")
		[ "$id" -gt "$best" ] && best=$id pick=$a
	done
	(cd "$MNT/@old_roots/$pick" && find . ! -type d ! -path ./etc/machine-id | sed 's/^\.//' | sort | tr '\n' ' ' | sed 's/ $//')
	img_umount
}
# recover WHAT [RESTORED]: the next normal boot. Blank root, or exactly the
# files RESTORED (a completed rollback); then, if restored, one more boot
# must wipe again.
recover() {
	n=$((n + 1))
	vm_boot "recover$n" "rr.boot=$n $KA"
	local files
	files=$(kv root-files)
	if [ -n "${2:-}" ] && [ "$files" = "$2" ]; then
		check "$1: next boot came up on the restored root" stage2_done
		check "$1: nothing missing from /persist" eq "$(kv persist-missing)" none
		n=$((n + 1))
		vm_boot "recover$n" "rr.boot=$n $KA"
	fi
	assert_boot "$1: recovery boot $n"
}
top_level_extras() { # entries at the top level we did not create (logged only)
	img_mount "$IMG" ro
	find "$MNT" -mindepth 1 -maxdepth 1 -printf '%f\n' |
		grep -vxE '@root|@nix|@persist|@old_roots|@root.keep-once' | tr '\n' ' ' 
	img_umount
}


# crash_series KIND: K = 1, 2, ... until the fault build says "not reached".
crash_series() {
	local kind=$1 k=1 line restored='' extra
	while [ $k -le 40 ]; do
		if [ "$kind" = firstboot ]; then
			img_create "$IMG" # no @old_roots yet: the path that creates it
			n=$((n + 1))
			BOOT_INITRD=$FAULT_INITRD vm_boot "firstboot-k$k" "rr.boot=$n $KA root_rotate.crash_at=$k"
		elif [ "$kind" = rotate ]; then
			seed_due
			n=$((n + 1))
			BOOT_INITRD=$FAULT_INITRD vm_boot "rotate-k$k" "rr.boot=$n $KA root_rotate.crash_at=$k"
		elif [ "$kind" = defaultroot ]; then
			seed_default_root
			n=$((n + 1))
			BOOT_INITRD=$FAULT_INITRD vm_boot "defaultroot-k$k" "rr.boot=$n $KA root_rotate.crash_at=$k"
		else
			restored=$(latest_files)
			BOOT_INITRD=$FAULT_INITRD vm_boot "rollback-k$k" "rr.boot=rescue rr.rescue=rollback root_rotate.crash_at=$k"
		fi
		line=$(tr -d '\r' <"$LOG" | grep -o "fault-injection: .*" | head -n 1)
		if [[ $line == *"point $k not reached"* ]]; then
			line=${line##*(}
			notes+=("$kind ${line%% *}") # "... not reached (N points)"
			if [ "$kind" != rollback ]; then
				assert_boot "$kind k=$k (uncut run)"
			else
				check "rollback k=$k (uncut run): rescue exit 0" grep -q 'rescue rollback end rc=0' "$LOG"
				recover "rollback k=$k (uncut)" "$restored"
			fi
			return
		fi
		tried=$((tried + 1))
		check "$kind k=$k: cut at point $k" eq "${line%% (*}" "fault-injection: crash at point $k"
		check "$kind k=$k: the cut boot never reached stage 2" not grep -q '^rr-stage2: boot=' "$LOG"
		log "$kind k=$k: $line"
		recover "$kind k=$k" "$restored"
		[ "$kind" != defaultroot ] || check "$kind k=$k: the default subvolume is the root again" default_is_root
		extra=$(top_level_extras)
		[ -z "$extra" ] || log "$kind k=$k: extra top-level entries: $extra"
		k=$((k + 1))
	done
	check "$kind: fault points ended before 40" false
}
crash_series firstboot
crash_series rotate
crash_series defaultroot
crash_series rollback

# qemu SIGKILLed mid-run (any instruction, any I/O): during a long prune
# (80 due archives with nested layers) and during a rescue rollback.
killed=0
for d in 0.1 0.25 0.4 0.6; do
	img_mount "$IMG"
	before=$(img_archives | awk -v c="$(stamp 1)" '$0 > c' | wc -l) # made today
	for i in $(seq 1 80); do seed_archive "$(stamp "$((100 + i))")" var/lib/m1 var/lib/m2; done
	renew_root
	img_umount
	n=$((n + 1))
	vm_boot_kill "kill-rotate-$d" 'rr-init: rotate begin' "$d" "rr.boot=$n $KA"
	grep -q 'rr-init: rotate end' "$LOG" || killed=$((killed + 1))
	# Where the cut landed, read from the disk as the next boot will find it.
	img_mount "$IMG" ro
	after=$(img_archives | awk -v c="$(stamp 1)" '$0 > c' | wc -l)
	log "cut at +${d}s: rotation $([ "$after" -gt "$before" ] && echo committed || echo not committed)," \
		"$(img_archives | awk -v c="$(stamp 99)" '$0 < c' | wc -l) of 80 due archives left"
	img_umount
	recover "kill during rotate (+${d}s)"
done
restored=$(latest_files)
vm_boot_kill kill-rollback 'rr-init: rescue rollback begin' 0.2 "rr.boot=rescue rr.rescue=rollback"
grep -q 'rescue rollback end' "$LOG" || killed=$((killed + 1))
recover "kill during rollback" "$restored"
result "$tried crash points tried ($(IFS=,; echo "${notes[*]}") points), all recovered; qemu killed $killed times mid-run, all recovered"
