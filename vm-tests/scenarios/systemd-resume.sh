#!/bin/bash
# systemd-resume: root-rotate.service ("continue") with resume= on the
# kernel command line, pointing at the disk-main-swap partition.
#   boot 1: no image in swap. systemd-hibernate-resume@ (systemd 252's name)
#           tries, finds none, and only then does root-rotate start; the unit
#           graph orders root-rotate after it through local-fs-pre.target.
#   boot 2: stage 2 hibernates to the swap partition.
#   boot 3: the initrd resumes that image before root-rotate starts: the
#           hibernated system carries on, on the root it had, and nothing
#           was archived.
#   boot 4: a normal boot again rotates that root; the filesystem checks clean.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
# shellcheck source=../systemd-initrd/lib.sh
. "$VMT/systemd-initrd/lib.sh"
sd_scenario_init systemd-resume
INITRD=$T/initrd-continue.img
sd_initrd continue "$INITRD"
RESUME_UNIT='systemd-hibernate-resume@dev-disk-by\x2dpartlabel-disk\x2dmain\x2dswap.service'
CMD="$SD_CMDLINE resume=PARTLABEL=disk-main-swap"
sd_mount "$IMG"
install -m 644 "$SDI/hibernate.sh" "$MNT/@nix/rr-test/workload"
img_umount
archives() {
	sd_mount "$IMG" ro
	img_archives | wc -l
	img_umount
}
# fsck_clean: btrfs check (read-only) of the partition, output in the log.
# shellcheck disable=SC2317 # called through check
fsck_clean() {
	local rc
	sd_loop "$IMG" 2
	btrfs check --readonly "$LOOPDEV" >"$LOG.btrfs-check" 2>&1
	rc=$?
	sd_unloop
	return "$rc"
}

vm_boot boot1 "$CMD rr.boot=1"
sd_assert_rotated "boot 1"
sd_assert_blank "boot 1"
check "boot 1: the resume unit ran, found no image" journal_has "Could not resume from '/dev/disk/by-partlabel/disk-main-swap'"
check "boot 1: the resume unit succeeded" eq "$(sdv resume Id) $(sdv resume Result)" "$RESUME_UNIT success"
check "boot 1: root-rotate is ordered after local-fs-pre.target" after_has local-fs-pre.target
check "boot 1: ... and through it after the resume unit" after_has "$RESUME_UNIT"
check "boot 1: root-rotate started after the resume attempt ended" \
	before "$(sdv resume ExecMainExitTimestampMonotonic)" "$(sdv root-rotate ExecMainStartTimestampMonotonic)"

vm_boot boot2-hibernate "$CMD rr.boot=2 rr.hibernate=1"
sd_assert_rotated "boot 2"
check "boot 2: hibernating" grep -q '^rr-stage2: hibernating' "$LOG"
check "boot 2: powered off in hibernation (stage 2 did not finish)" not stage2_done
# Do not touch the image now: the hibernated kernel has it mounted.

vm_boot boot3-resume "$CMD rr.boot=3"
check "boot 3: the initrd started the resume" grep -q 'Starting systemd-hibernate-resume@' "$LOG"
check "boot 3: root-rotate.service was not started first" not grep -q 'Starting root-rotate.service' "$LOG"
check "boot 3: boot 2's system resumed and finished" eq "$(kv resumed) $(stage2_done && echo finished)" "boot-2 finished"
check "boot 3: no fresh stage 2 (no switch-root)" not grep -q '^rr-stage2: boot=3' "$LOG"
check "boot 3: nothing missing from /persist" eq "$(kv persist-missing)" none
check "boot 3: btrfs check is clean" fsck_clean
check "boot 3: nothing archived since boot 2" eq "$(archives)" 2

vm_boot boot4 "$CMD rr.boot=4"
sd_assert_rotated "boot 4"
sd_assert_blank "boot 4"
check "boot 4: no image left to resume" journal_has "Could not resume from"
sd_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
check "boot 4: 3 archives" eq "${#ARCH[@]}" 3
check "boot 4: newest archive is the resumed system's root" \
	eq "$(cd "$MNT/@old_roots/${ARCH[-1]}/etc" && echo boot-* resumed)" "boot-2 resumed"
img_umount
check "boot 4: btrfs check is clean" fsck_clean
result "resume attempted before root-rotate (unit graph and timestamps); a real hibernation resumed untouched"
