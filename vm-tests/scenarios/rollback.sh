#!/bin/bash
# rollback: boot 2 has lost a file written in boot 1. A rescue boot runs
# `root-rotate rollback --latest` from the initramfs shell path. Boot 3 has
# the file back (the marker keeps the restored root once); boot 4 wipes again.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init rollback
vm_boot boot1 "rr.boot=1"
assert_boot "boot 1"
vm_boot boot2 "rr.boot=2"
assert_boot "boot 2" # etc=none: boot 1's /etc/boot-1 is gone

img_mount "$IMG" ro
mapfile -t before < <(img_archives)
img_umount
vm_boot rescue "rr.boot=rescue rr.rescue=rollback"
check "rescue: rollback exit 0" grep -q 'rr-init: rescue rollback end rc=0' "$LOG"
check "rescue: no error lines" eq "$(kmsg_count 3)" 0
img_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
check "rescue: @root is boot 1's root" test -f "$MNT/@root/etc/boot-1" -a ! -e "$MNT/@root/etc/boot-2"
check "rescue: rollback marker written" test -e "$MNT/@root.keep-once"
check "rescue: restored archive kept intact" test -f "$MNT/@old_roots/${before[-1]}/etc/boot-1"
check "rescue: boot 2's root archived, not lost" eq "${#ARCH[@]}" "$((${#before[@]} + 1))"
check "rescue: newest archive holds /etc/boot-2" test -f "$MNT/@old_roots/${ARCH[-1]}/etc/boot-2"
img_umount

vm_boot boot3 "rr.boot=3"
check "boot 3: stage 2 reached" stage2_done
check "boot 3: rotation exit 0" eq "$(rotate_rc)" 0
check "boot 3: /etc/boot-1 is back" eq "$(kv etc)" boot-1
check "boot 3: nothing missing from /persist" eq "$(kv persist-missing)" none
img_mount "$IMG" ro
check "boot 3: marker consumed" test ! -e "$MNT/@root.keep-once"
img_umount

vm_boot boot4 "rr.boot=4"
assert_boot "boot 4 (wiped again)"
result "file lost in boot 2, restored by rescue rollback in boot 3, wiped in boot 4"
