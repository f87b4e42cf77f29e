#!/bin/bash
# nested: the live root holds nested subvolumes as docker and machinectl
# leave them: read-only image layers that contain further subvolumes, and
# var/lib/machines with a container inside. The root rotates with them, and
# a later boot prunes that archive recursively, without errors or orphans.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init nested
vm_boot boot1 "rr.boot=1"
assert_boot "boot 1"

# Boot 1's root is now live: give it the nested trees (as its services would).
img_mount "$IMG"
r=$MNT/@root
mkdir -p "$r/var/lib/docker/btrfs/subvolumes" "$r/var/lib"
btrfs -q subvolume create "$r/var/lib/machines" >/dev/null
btrfs -q subvolume create "$r/var/lib/machines/debian" >/dev/null
echo c >"$r/var/lib/machines/debian/os-release"
for l in layer1 layer2; do
	d=$r/var/lib/docker/btrfs/subvolumes/$l
	btrfs -q subvolume create "$d" >/dev/null
	btrfs -q subvolume create "$d/inner" >/dev/null # inside a layer made read-only below
	mkdir -p "$d/inner/deep" && btrfs -q subvolume create "$d/inner/deep/leaf" >/dev/null
	echo "$l" >"$d/file"
	btrfs property set -ts "$d" ro true
done
img_umount

vm_boot boot2 "rr.boot=2"
assert_boot "boot 2" # root-dirs proves no nested subvolume stayed in the new root
img_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
nested_arch=${ARCH[-1]}
a=$MNT/@old_roots/$nested_arch
check "boot 2: newest archive holds the machine" test -s "$a/var/lib/machines/debian/os-release"
check "boot 2: newest archive holds the read-only layers" \
	test -s "$a/var/lib/docker/btrfs/subvolumes/layer2/file" -a -d "$a/var/lib/docker/btrfs/subvolumes/layer2/inner/deep/leaf"
img_umount

# 60 days later, keep only the newest: the nested archive is due.
vm_boot boot3-prune "rr.boot=3 rr.keep_at_least=1" -rtc "base=$(date -u -d '+60 days' +%Y-%m-%dT%H:%M:%S)"
assert_boot "boot 3"
img_mount "$IMG" ro
mapfile -t ARCH < <(img_archives)
check "boot 3: nested archive pruned" arch_lacks "$nested_arch"
check "boot 3: one archive left" eq "${#ARCH[@]}" 1
# No orphaned nested subvolume may remain below @old_roots.
left=$(btrfs subvolume list "$MNT" | awk '{print $NF}' | grep '^@old_roots/' |
	grep -vxF "@old_roots/${ARCH[0]}" | tr '\n' ' ')
check "boot 3: no orphaned subvolumes below @old_roots" eq "$left" ""
img_umount
result "root with read-only nested layers and machines rotated, then pruned recursively"
