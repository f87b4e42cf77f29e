#!/bin/bash
# budget: 300 due archives and a small --budget-ms. Every boot completes its
# rotation; pruning stops when the budget is spent, so the backlog shrinks
# over successive boots, and a later `prune` from the rescue path clears it.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init budget
budget=${RR_BUDGET_MS:-100}
img_mount "$IMG"
now=$(date +%s)
for i in $(seq 1 300); do
	seed_archive "$(date -u -d "@$((now - 40 * 86400 - i * 60))" +%Y-%m-%dT%H:%M:%SZ)"
done
img_umount
backlog() { # due seeded archives left (all seeds are older than 39 days)
	img_mount "$IMG" ro
	img_archives | awk -v c="$(date -u -d '-39 days' +%Y-%m-%dT%H:%M:%SZ)" '$0 < c' | wc -l
	img_umount
}
left=(300) secs=()
for n in 1 2 3; do
	vm_boot "boot$n" "rr.boot=$n rr.budget_ms=$budget"
	assert_boot "boot $n" # rotation done although the budget is tiny
	secs+=("$(rotate_secs)")
	check "boot $n: rotation within budget + 2 s of process start" \
		awk -v s="${secs[-1]:-99}" -v b="$budget" 'BEGIN { exit !(s <= b / 1000 + 2) }'
	left+=("$(backlog)")
	check "boot $n: backlog shrank (${left[-2]} -> ${left[-1]})" test "${left[-1]}" -lt "${left[-2]}"
done
check "budget deferred part of the backlog (tune RR_BUDGET_MS if not)" test "${left[1]}" -gt 0
vm_boot rescue-prune "rr.boot=rescue rr.rescue=prune rr.budget_ms=120000" 
check "rescue prune: exit 0" grep -q 'rr-init: rescue prune end rc=0' "$LOG"
left+=("$(backlog)")
check "rescue prune cleared the backlog" eq "${left[-1]}" 0
result "budget ${budget} ms: backlog ${left[*]} (boots 1-3, then prune); rotate ${secs[*]} s"
