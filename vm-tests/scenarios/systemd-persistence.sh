#!/bin/bash
# systemd-persistence: a systemd stage 1 (dracut, systemd 252) running
# root-rotate.service as NixOS renders it (onFailure "continue"), two boots.
# Each boot the unit starts once its device unit is plugged and exits before
# sysroot.mount starts; the new root is blank; boot 1's file in the root is
# gone in boot 2 and sits in the newest archive; /persist keeps everything;
# rotate's status file (/run/root-rotate/status.json) reaches stage 2.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
# shellcheck source=../systemd-initrd/lib.sh
. "$VMT/systemd-initrd/lib.sh"
sd_scenario_init systemd-persistence
INITRD=$T/initrd-continue.img
sd_initrd continue "$INITRD"
secs=()
for n in 1 2; do
	vm_boot "boot$n" "$SD_CMDLINE rr.boot=$n"
	secs+=("$BOOT_SECS")
	sd_assert_rotated "boot $n"
	sd_assert_blank "boot $n"
	check "boot $n: no /etc/boot-* at start" eq "$(kv etc)" none
	log "boot $n: stage 1 done at $(sd_uptime) s (kernel uptime), qemu ran ${BOOT_SECS}s"
	sd_mount "$IMG" ro
	mapfile -t ARCH < <(img_archives)
	check "boot $n: $n archives" eq "${#ARCH[@]}" "$n"
	check "boot $n: live root holds only this boot's /etc file" \
		eq "$(cd "$MNT/@root/etc" && echo boot-*)" "boot-$n"
	if [ "$n" -gt 1 ]; then
		check "boot $n: newest archive holds /etc/boot-$((n - 1))" \
			test -f "$MNT/@old_roots/${ARCH[-1]}/etc/boot-$((n - 1))"
	fi
	for i in $(seq 1 "$n"); do
		check "boot $n: @persist has data-$i" test -s "$MNT/@persist/data-$i"
		check "boot $n: @persist has var/lib/data/boot-$i" test -s "$MNT/@persist/var/lib/data/boot-$i"
	done
	st=$(kv rotate-status)
	check "boot $n: /run/root-rotate/status.json carried into stage 2, exit_code 0" grep -q '"exit_code":0' <<<"$st"
	check "boot $n: the status file names the newest archive" grep -qF "\"archived\":\"${ARCH[-1]}\"" <<<"$st"
	img_umount
done
result "2 boots, systemd stage 1: after the device, before sysroot.mount; root blank, /persist kept (qemu ${secs[*]} s per boot)"
