#!/bin/bash
# clock: a boot with the clock at 1970 (a dead RTC battery) rotates but
# prunes nothing; a boot with the clock 60 days ahead prunes what is due,
# keeping the 3 most recently archived roots by subvolume ID, not by stamp.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init clock
img_mount "$IMG"
seeds=("$(stamp 50)" "$(stamp 45)" "$(stamp 40)" "$(stamp 35)")
for a in "${seeds[@]}"; do seed_archive "$a"; done
# An archive's subvolume ID is that of the root when it was created. Recreate
# the live root after the seeds so that the archive boot 1 makes (stamped
# 1970) is newer by ID than all seeds but older by stamp: boot 2 must keep it.
renew_root
img_umount

vm_boot boot1-1970 "rr.boot=1" -rtc base=1970-01-01
assert_boot "boot 1 (1970)"
check "boot 1: pruning skipped with a warning" test "$(kmsg_count 4)" -ge 1
img_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
check "boot 1: rotated into a 1970 stamp" eq "$(printf '%s\n' "${ARCH[@]}" | grep -c '^1970-01-01T')" 1
for a in "${seeds[@]}"; do check "boot 1: due archive $a not pruned" arch_has "$a"; done
check "boot 1: 5 archives" eq "${#ARCH[@]}" 5
img_umount

ahead=$(date -u -d '+60 days' +%Y-%m-%dT%H:%M:%S)
vm_boot boot2-ahead "rr.boot=2" -rtc "base=$ahead"
assert_boot "boot 2 (+60 days)"
img_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
# Due now: the 4 seeds and the 1970 archive. Kept by ID: the new archive,
# the 1970 one and the last-created seed.
check "boot 2: 3 archives left (keep-at-least)" eq "${#ARCH[@]}" 3
check "boot 2: new archive is stamped 60 days ahead" arch_has "$(printf '%s\n' "${ARCH[@]}" | grep "^${ahead%%T*}T")"
check "boot 2: 1970 archive kept by subvolume ID" eq "$(printf '%s\n' "${ARCH[@]}" | grep -c '^1970-')" 1
check "boot 2: newest seed kept by subvolume ID" arch_has "${seeds[3]}"
for a in "${seeds[@]:0:3}"; do check "boot 2: $a pruned" arch_lacks "$a"; done
img_umount
result "1970 clock: rotated, pruned nothing; +60 days: pruned 3, kept 3 by ID"
