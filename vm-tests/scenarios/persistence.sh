#!/bin/bash
# persistence: three boots, each writing /etc/boot-N (ephemeral),
# /persist/data-N and /var/lib/data/boot-N (persisted). After each boot the
# earlier /etc files are gone, every persisted file is there, and the
# archives count up with valid, distinct names.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init persistence
times=()
for n in 1 2 3; do
	vm_boot "boot$n" "rr.boot=$n"
	assert_boot "boot $n"
	times+=("$(rotate_secs)")
	img_mount "$IMG" ro
	mapfile -t arch < <(img_archives)
	check "boot $n: $n archives" eq "${#arch[@]}" "$n"
	check "boot $n: archive names are root-rotate stamps" \
		eq "$(printf '%s\n' "${arch[@]}" | grep -Evc "$STAMP_RE")" 0
	check "boot $n: archive names distinct" eq "$(printf '%s\n' "${arch[@]}" | sort -u | wc -l)" "$n"
	check "boot $n: live root holds only this boot's /etc file" \
		eq "$(cd "$MNT/@root/etc" && echo boot-*)" "boot-$n"
	if [ "$n" -gt 1 ]; then
		# The previous root was archived, not lost: newest name holds boot n-1.
		check "boot $n: newest archive holds /etc/boot-$((n - 1))" \
			test -f "$MNT/@old_roots/${arch[-1]}/etc/boot-$((n - 1))"
	fi
	for i in $(seq 1 "$n"); do
		check "boot $n: @persist has data-$i" test -s "$MNT/@persist/data-$i"
		check "boot $n: @persist has var/lib/data/boot-$i" test -s "$MNT/@persist/var/lib/data/boot-$i"
	done
	img_umount
done
result "3 boots; /etc wiped, /persist kept, archives 1..3; rotate ${times[*]} s"
