#!/bin/bash
# budget: 300 due archives. Boot 1 has a 1 ms budget: it still rotates, and
# defers all pruning. Boots 2-3 have a small budget (RR_BUDGET_MS, default
# 1500 ms; under TCG, mounting and scanning 300 entries alone take 0.4-1.4 s
# depending on host load) and shrink the backlog; a later `prune` from the
# rescue path clears whatever is left.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init budget
budget=${RR_BUDGET_MS:-1500}
img_mount "$IMG"
now=$(date +%s)
for i in $(seq 1 300); do
	seed_archive "$(date -u -d "@$((now - 40 * 86400 - i * 60))" +%Y-%m-%dT%H:%M:%SZ)"
done
renew_root
img_umount
backlog() { # due seeded archives left (all seeds are older than 39 days)
	img_mount "$IMG" ro
	img_archives | awk -v c="$(date -u -d '-39 days' +%Y-%m-%dT%H:%M:%SZ)" '$0 < c' | wc -l
	img_umount
}
left=(300) secs=()
for n in 1 2 3; do
	b=$budget
	[ "$n" = 1 ] && b=1
	vm_boot "boot$n" "rr.boot=$n rr.budget_ms=$b"
	assert_boot "boot $n" # the rotation is done whatever the budget
	secs+=("$(rotate_secs)")
	left+=("$(backlog)")
	log "boot $n: $(kmsg_lines | grep -o 'root-rotate: rotate: .*' | cut -c14-)"
	if [ "$n" = 1 ]; then
		check "boot 1 (1 ms): all pruning deferred" eq "${left[1]}" 300
		check "boot 1: deferral logged" test "$(kmsg_count 4 'budget of 1 ms spent')" = 1
	else
		check "boot $n ($b ms): backlog did not grow" test "${left[-1]}" -le "${left[-2]}"
	fi
done
check "backlog shrank over boots 2-3 (${left[1]} -> ${left[3]})" test "${left[3]}" -lt "${left[1]}"
vm_boot rescue-prune "rr.boot=rescue rr.rescue=prune rr.budget_ms=120000"
check "rescue prune: exit 0" grep -q 'rr-init: rescue prune end rc=0' "$LOG"
left+=("$(backlog)")
check "rescue prune cleared the backlog" eq "${left[-1]}" 0
result "300 due; backlog ${left[*]} (start, boots 1-3 at 1/$budget/$budget ms, rescue prune); rotate ${secs[*]} s"
