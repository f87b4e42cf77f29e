#!/bin/bash
# baseline: measurement only. The same three boots with root-rotate and with
# benches/snippet-baseline.sh (the impermanence README snippet's algorithm,
# btrfs-progs in the initramfs), on images seeded alike: 60 archives x 3
# nested subvolumes, 30 of them due. Boot 1 prunes the 30; boots 2-3 only
# rotate. Times come from kmsg timestamps around the rotation in stage 1.
# shellcheck source=../lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"
scenario_init baseline
paired_init 60 30 3
rr=() sn=()
for n in 1 2 3; do
	paired_boot "$n"
	rr+=("$RR_SECS") sn+=("$SN_SECS")
	check "boot $n: root-rotate boot completed" stage2_done
	check "boot $n: snippet boot completed" on_log "$SN_LOG" stage2_done
	check "boot $n: both rotation times measured" test -n "$RR_SECS" -a -n "$SN_SECS"
done
result "rotation in stage 1, boots 1..3: root-rotate ${rr[*]} s; snippet ${sn[*]} s"
