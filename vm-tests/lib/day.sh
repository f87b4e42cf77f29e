# shellcheck shell=bash
# demo_day: the rest of a storage host's day on the demo's disk, after its
# boots. The same programs the NixOS units run, run here directly:
#   1. a snapshot of @persist by btrbk (storage.snapshots' settings for a
#      server) and its record (snapshot-report.sh);
#   2. the nightly offsite backup to a local S3 endpoint (moto on 127.0.0.1
#      standing in for Backblaze B2): quiesce.sh --record, backup-source.sh,
#      backup-manifest.sh, restic-backup.sh, then restic-check.sh;
#   3. the restore drill (restore-drill.sh) of that backup;
#   4. `storage status`: storage-status.sh over those results, the archives
#      (root-rotate list --json) and the record rotate left at the last boot.
# Needs: harness.sh sourced, $IMG (disk A), $RR_LOG (its last boot's log),
# $BIN (root-rotate), scripts/setup's btrbk, restic and moto venv.
demo_day() {
	local jobs=$REPO/nixos-module/storage/jobs
	local day state run rc t0 venv='' v
	day=$(mktemp -d /tmp/rr-demo-day.XXXXXX)
	state=$day/state
	run=$day/run
	for v in "${ROOT_ROTATE_VENV:-}" /opt/root-rotate-venv "$REPO/.venv"; do
		[ -n "$v" ] && [ -x "$v/bin/moto_server" ] && { venv=$v; break; }
	done
	if [ -z "$venv" ] || ! command -v btrbk >/dev/null || ! command -v restic >/dev/null; then
		echo "   (skipped: btrbk, restic or the moto venv is missing; run scripts/setup)"
		return 0
	fi
	mkdir -p "$state" "$day/secrets" "$day/cache"
	img_mount "$IMG"

	echo "   1. snapshot (btrbk, the server profile's retention)"
	[ -d "$MNT/@snapshots" ] || btrfs -q subvolume create "$MNT/@snapshots"
	cat >"$day/btrbk.conf" <<-EOF
		timestamp_format long
		snapshot_preserve_min latest
		snapshot_preserve 48h 30d 12w 12m
		volume $MNT
		  snapshot_dir @snapshots
		  subvolume @persist
	EOF
	t0=$(date +%s)
	rc=0
	btrbk -c "$day/btrbk.conf" run >"$day/btrbk.log" 2>&1 || rc=$?
	bash "$jobs/snapshot-report.sh" --result "$state/snapshots.json" --interval 3600 \
		--preserve '48h 30d 12w 12m' --preserve-min latest \
		--service-result "$([ "$rc" = 0 ] && echo success || echo exit-code)" --exit-status "$rc" \
		--started "$t0" --dir "$MNT/@snapshots" @persist >/dev/null
	echo "      btrbk exit $rc; @snapshots: $(cd "$MNT/@snapshots" && echo ./*)"

	echo "   2. offsite backup to a local S3 endpoint (restic $(restic version | awk '{ print $2 }'))"
	# shellcheck source=../../nixos-module/storage/jobs/testlib-s3.sh
	work=$day . "$jobs/testlib-s3.sh"
	work=$day s3_start acme-backups "$day/secrets/b2-credentials"
	set -a
	# shellcheck disable=SC1091 # written by s3_start
	. "$day/secrets/b2-credentials"
	set +a
	export RESTIC_REPOSITORY="s3:http://127.0.0.1:$port/acme-backups/demo"
	export RESTIC_PASSWORD_FILE=$day/secrets/restic-password RESTIC_CACHE_DIR=$day/cache
	head -c 32 /dev/urandom | base64 >"$RESTIC_PASSWORD_FILE"
	bash "$jobs/quiesce.sh" --record "$state/backup-record/record.json" --best-effort >/dev/null
	bash "$jobs/backup-source.sh" prepare "$LOOPDEV" "$run" @persist >/dev/null
	bash "$jobs/backup-manifest.sh" "$state/backup-record/manifest.tsv" 16 "$run/@backup-source/@persist" >/dev/null
	bash "$jobs/restic-backup.sh" --host demo --price-per-tb 6.00 --result "$state/backup.json" \
		"$run/@backup-source/@persist" "$state/backup-record" -- --keep-daily 7 2>&1 |
		grep '^storage-backup' | sed 's/^/      /'
	bash "$jobs/backup-source.sh" release "$LOOPDEV" "$run" @persist
	bash "$jobs/restic-check.sh" --result "$state/backup-check.json" 1 2>&1 | grep '^storage-backup-check' | sed 's/^/      /'

	echo "   3. restore drill of that backup"
	bash "$jobs/restore-drill.sh" --host demo --record-dir "$state/backup-record" \
		--scratch "$day/scratch" --result "$state/restore-drill.json" 2>&1 | sed 's/^storage-restore-drill: /      /'
	stop "$proxy"
	stop "$moto"

	echo "   4. storage status"
	"$BIN" list --device "$LOOPDEV" --json >"$day/archives.json" 2>/dev/null || echo '[]' >"$day/archives.json"
	tr -d '\r' <"$RR_LOG" | sed -n 's/^rr-init: status //p' | tail -n 1 >"$day/boot-status.json"
	# The boot was in qemu, not on this machine: its time counts as this boot.
	bash "$jobs/storage-status.sh" --state-dir "$state" --root-rotate-json "$day/archives.json" \
		--boot-status "$day/boot-status.json" --boot-time 0 --price-per-tb 6 --budget 2 \
		--filesystem "$MNT" | sed 's/^/      /' || true
	img_umount
	rm -rf "$day"
}
