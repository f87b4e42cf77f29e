#!/bin/bash
# retention: archives 10 to 60 days old plus foreign entries. After one boot
# (keep-days 30, keep-at-least 3) the archives over 30 days are gone, except
# one kept by keep-at-least, and every foreign entry is untouched.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init retention
img_mount "$IMG"
# Creation order sets subvolume IDs: the 40-day one is created last, so it
# is among the 3 most recently archived (with the live root, renewed below,
# and the 10-day one) and must survive although due.
a60=$(stamp 60) a45=$(stamp 45) a35=$(stamp 35 %Y-%m-%-d_%H:%M:%S) a20=$(stamp 20) a10=$(stamp 10) a40=$(stamp 40)
seed_archive "$a60"
seed_archive "$a45" var/lib/machines/c1
seed_archive "$a35" # the README snippet's name format
seed_archive "$a20"
seed_archive "$a10"
seed_archive "$a40"
# Foreign entries: never touched.
oldname=$(stamp 50)
mkdir "$MNT/@old_roots/$oldname" && echo plain >"$MNT/@old_roots/$oldname/f" # plain dir, stamp name
echo notes >"$MNT/@old_roots/notes.txt"
link=$(stamp 55)
ln -s ../@persist "$MNT/@old_roots/$link"
btrfs -q subvolume create "$MNT/@old_roots/manual-backup" >/dev/null
echo keep >"$MNT/@persist/precious"
renew_root
img_umount

vm_boot boot1 "rr.boot=1"
assert_boot "boot 1"
img_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
for a in "$a60" "$a45" "$a35"; do
	check "due archive $a deleted" arch_lacks "$a"
done
check "40-day archive kept (keep-at-least 3)" arch_has "$a40"
check "20-day archive kept" arch_has "$a20"
check "10-day archive kept" arch_has "$a10"
check "4 archives: 10d, 20d, 40d and the new one" eq "${#ARCH[@]}" 4
check "foreign plain dir untouched" test -f "$MNT/@old_roots/$oldname/f"
check "foreign file untouched" test -f "$MNT/@old_roots/notes.txt"
check "foreign symlink untouched" test -L "$MNT/@old_roots/$link"
check "foreign subvolume untouched" test "$(stat -c %i "$MNT/@old_roots/manual-backup")" = 256
check "@persist untouched (symlink target)" test -s "$MNT/@persist/precious"
check "@nix untouched" test -x "$MNT/@nix/rr-test/stage2"
img_umount
check "foreign entries logged as warnings" test "$(kmsg_count 4)" -ge 1
result "due archives pruned, keep-at-least honoured, 4 foreign entries untouched"
