#!/bin/bash
# failure: root-rotate pointed at a non-Btrfs disk, then at a missing one.
# With the default "continue" policy the boot goes on with the root as it
# was, and the console shows one clear error line. With "fail" the boot
# stops before switch_root. A later correct boot rotates normally again.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init failure
junk=$T/junk.img
head -c 16M /dev/urandom >"$junk" # not a filesystem at all
vdb=(-drive "file=$junk,format=raw,if=virtio")

vm_boot boot1 "rr.boot=1" "${vdb[@]}"
assert_boot "boot 1"

# one_error NAME: exactly one root-rotate error line naming the device.
one_error() {
	check "$1: rotation exit 1" eq "$(rotate_rc)" 1
	check "$1: exactly one error line" eq "$(kmsg_count 3)" 1
	check "$1: the error names $2" eq "$(kmsg_count 3 "$2")" 1
	log "$1: $(kmsg_lines | grep 'root-rotate:' | grep -E '^<(3|11)>' | head -n 1)"
}
vm_boot boot2-notbtrfs "rr.boot=2 rr.device=/dev/vdb" "${vdb[@]}"
one_error "boot 2 (not Btrfs)" /dev/vdb
check "boot 2: continue policy announced" grep -q 'policy continue' "$LOG"
check "boot 2: stage 2 reached" stage2_done
check "boot 2: root as it was (/etc/boot-1 kept)" eq "$(kv etc)" boot-1
check "boot 2: nothing missing from /persist" eq "$(kv persist-missing)" none

vm_boot boot3-missing "rr.boot=3 rr.device=/dev/vdc" "${vdb[@]}"
one_error "boot 3 (missing device)" /dev/vdc
check "boot 3: stage 2 reached" stage2_done
check "boot 3: root as it was" eq "$(kv etc)" "boot-1 boot-2"

vm_boot boot4-failpolicy "rr.boot=4 rr.device=/dev/vdb rr.policy=fail" "${vdb[@]}"
one_error "boot 4 (fail policy)" /dev/vdb
check "boot 4: boot stopped" grep -q 'policy fail: boot stopped' "$LOG"
check "boot 4: stage 2 not reached" not grep -q "^rr-stage2: boot=" "$LOG"

img_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
check "failed boots archived nothing" eq "${#ARCH[@]}" 1
img_umount

vm_boot boot5 "rr.boot=5" "${vdb[@]}"
assert_boot "boot 5 (fixed device: wiped again)"
result "not-Btrfs and missing device: one error line, boot continued (or stopped with policy fail)"
