#!/bin/bash
# systemd-failure: what each onFailure variant of root-rotate.service does
# under systemd stage 1 when the rotation cannot happen.
#   boot 1, "fail":     a normal boot rotates (the variant works at all).
#   boot 2, "continue": the device is missing (the partition carries another
#                       label; / is mounted by filesystem UUID): the unit never
#                       starts, the boot reaches initrd-switch-root on the old root.
#   boot 3, "continue": the device is there but root-rotate exits 1 (@old_roots
#                       is a file): same, the old root is used.
#   boot 4, "fail":     same failure: the boot stops in emergency.target.
#   boot 5, "fail":     layout repaired: rotates again, archiving boots 1-3.
# A missing device unit fails only after systemd's device timeout (90 s by
# default). Boot 2's initramfs sets 10 s for exactly that device unit, the
# drop-in `x-systemd.device-timeout=10s` would generate; the unit text stays
# as rendered.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
# shellcheck source=../systemd-initrd/lib.sh
. "$VMT/systemd-initrd/lib.sh"
sd_scenario_init systemd-failure
FAIL=$T/initrd-fail.img CONT=$T/initrd-continue.img SHORT=$T/initrd-continue-short.img
sd_initrd fail "$FAIL"
sd_initrd continue "$CONT"
sd_initrd continue "$SHORT" 'etc/systemd/system/dev-disk-by\x2dpartlabel-disk\x2dmain\x2droot.device.d/timeout.conf=[Unit]
JobRunningTimeoutSec=10s'
# shellcheck disable=SC2317 # called through check
switched() { tr -d '\r' <"$LOG" | grep -q 'Reached target initrd-switch-root.target'; }
archives() {
	sd_mount "$IMG" ro
	img_archives | wc -l
	img_umount
}

BOOT_INITRD=$FAIL vm_boot boot1-fail "$SD_CMDLINE rr.boot=1"
sd_assert_rotated "boot 1 (fail variant)"
sd_assert_blank "boot 1 (fail variant)"

sfdisk -q --part-label "$IMG" 2 disk-main-old || die "cannot relabel"
BOOT_INITRD=$SHORT vm_boot boot2-missing "${SD_CMDLINE/PARTLABEL=disk-main-root/UUID=$FS_UUID} rr.boot=2"
sfdisk -q --part-label "$IMG" 2 disk-main-root || die "cannot relabel"
check "boot 2 (missing device): the device unit timed out" \
	journal_has 'Timed out waiting for device dev-disk-by\x2dpartlabel-disk\x2dmain\x2droot.device'
check "boot 2 (missing device): root-rotate.service failed as a dependency" \
	journal_has 'Dependency failed for root-rotate.service'
check "boot 2 (missing device): root-rotate never ran" eq "$(sdv root-rotate ExecMainStartTimestampMonotonic)" 0
check "boot 2 (missing device): reached initrd-switch-root" switched
check "boot 2 (missing device): stage 2 ran" stage2_done
check "boot 2 (missing device): old root used (/etc/boot-1 kept)" eq "$(kv etc)" boot-1
check "boot 2 (missing device): nothing archived" eq "$(archives)" 1

# A file where the archive directory belongs: root-rotate exits 1 right away.
sd_mount "$IMG"
mv "$MNT/@old_roots" "$MNT/old_roots.aside" && touch "$MNT/@old_roots"
img_umount
BOOT_INITRD=$CONT vm_boot boot3-rrfails "$SD_CMDLINE rr.boot=3"
check "boot 3 (root-rotate fails): unit failed with exit status 1" \
	eq "$(sdv root-rotate Result) $(sdv root-rotate ExecMainStatus)" "exit-code 1"
check "boot 3 (root-rotate fails): its error is in the journal" \
	unit_journal_has -err 'archive directory /btrfs_tmp/@old_roots is not a directory'
check "boot 3 (root-rotate fails): reached initrd-switch-root" switched
check "boot 3 (root-rotate fails): stage 2 ran" stage2_done
check "boot 3 (root-rotate fails): old root used" eq "$(kv etc)" "boot-1 boot-2"

BOOT_INITRD=$FAIL vm_boot boot4-emergency "$SD_CMDLINE rr.boot=4"
check "boot 4 (fail variant): unit failed with exit status 1" \
	eq "$(sdv root-rotate Result) $(sdv root-rotate ExecMainStatus)" "exit-code 1"
check "boot 4 (fail variant): emergency.target reached" reported emergency
check "boot 4 (fail variant): emergency.target active" eq "$(sdv emergency ActiveState)" active
check "boot 4 (fail variant): initrd-switch-root.target not reached" not switched
check "boot 4 (fail variant): stage 2 not reached" not grep -q '^rr-stage2: boot=' "$LOG"

sd_mount "$IMG"
rm "$MNT/@old_roots" && mv "$MNT/old_roots.aside" "$MNT/@old_roots"
img_umount
check "boots 2-4 archived nothing" eq "$(archives)" 1
BOOT_INITRD=$FAIL vm_boot boot5-fail "$SD_CMDLINE rr.boot=5"
sd_assert_rotated "boot 5 (repaired)"
sd_assert_blank "boot 5 (repaired)"
sd_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
check "boot 5: 2 archives" eq "${#ARCH[@]}" 2
check "boot 5: newest archive holds boots 1-3's /etc files" \
	eq "$(cd "$MNT/@old_roots/${ARCH[-1]}/etc" && echo boot-*)" "boot-1 boot-2 boot-3"
img_umount
result "missing device and failing root-rotate: continue reaches switch-root on the old root, fail stops in emergency.target"
