#!/usr/bin/env bash
# storage-status: is this host's storage healthy? One reader, three renderings.
#   storage-status [--state-dir DIR] [--root-rotate-json FILE | --root-rotate-args 'ARGS' | --no-rotation]
#     [--boot-status FILE] [--boot-time EPOCH] [--price-per-tb USD] [--budget USD] [--drill-interval SECONDS]
#     [--filesystem MOUNTPOINT... | --no-filesystems] [--now EPOCH] [--json | --prometheus FILE]
# Reads the jobs' result files in --state-dir (/var/lib/storage: backup.json,
# backup-check.json, restore-drill.json, snapshots.json), the archives of
# root-rotate (`root-rotate list --json ARGS`, or that output saved in
# --root-rotate-json) and its boot record (--boot-status,
# /run/root-rotate/status.json: it ran at this boot when its time is at or
# after the boot time, /proc/stat btime unless --boot-time), and each
# --filesystem (`btrfs filesystem usage -b`, `btrfs device stats`; without
# --filesystem: every mounted Btrfs, once per device; --no-filesystems: none).
# One jq program turns all of that into one model: a list of facts, each
# with a status (ok, warn, fail), its time, a one-line summary, and the
# metrics it yields. The renderings only format that model:
#   (default)         one line per fact: mark (OK/WARN/FAIL, coloured on a
#                     tty unless NO_COLOR is set), what, age, summary;
#   --json            the model itself;
#   --prometheus FILE the metrics (node_exporter textfile format, HELP and
#                     TYPE lines, base units) to FILE.tmp, then renamed to FILE.
# Thresholds (the alert rules use the same): snapshots stale after 2 x the
# interval, backup after 26 h, check after 8 d, drill after 35 d (or
# --drill-interval + 5 d, exported as storage_restore_drill_interval_seconds); Btrfs
# unallocated low under both 10 GiB and 5 % of the device (the alert rule's
# min(10 GiB, 5 %)); any device error; cost over --budget.
# A job that never ran is WARN "never ran"; rotation that did not run at
# this boot is FAIL. Its metrics are omitted, never faked as zeros.
# Exit status: 0 every fact OK, 1 some WARN, 2 some FAIL (for every
# rendering; a timer writing --prometheus should accept 1 and 2), 64 usage
# error, 70 internal error, 73 the metrics file could not be written.
set -euo pipefail

me=storage-status
usage() { # usage [REASON]: the reason, then the synopsis, on stderr; exit 64
  [ -z "${1:-}" ] || echo "$me: $1" >&2
  echo "usage: $me [--state-dir DIR] [--root-rotate-json FILE | --root-rotate-args 'ARGS' | --no-rotation] [--boot-status FILE] [--boot-time EPOCH] [--price-per-tb USD] [--budget USD] [--drill-interval SECONDS] [--filesystem MOUNTPOINT... | --no-filesystems] [--now EPOCH] [--json | --prometheus FILE]" >&2
  exit 64
}
state_dir=/var/lib/storage rr_json='' rr_args='' rotation=1 boot_status=/run/root-rotate/status.json
boot_time='' price='' budget='' drill_interval='' now='' mode=screen prom='' filesystems=() find_filesystems=1
number='^[0-9]+([.][0-9]+)?$'
while [ $# -gt 0 ]; do
  case $1 in
    --state-dir | --root-rotate-json | --root-rotate-args | --boot-status | --boot-time | --price-per-tb | --budget | --drill-interval | --filesystem | --now | --prometheus)
      [ $# -ge 2 ] || usage "$1 needs a value" ;;&
    --state-dir) state_dir=$2; shift 2 ;;
    --root-rotate-json) rr_json=$2; shift 2 ;;
    --root-rotate-args) rr_args=$2; shift 2 ;;
    --no-rotation) rotation=0; shift ;;
    --boot-status) boot_status=$2; shift 2 ;;
    --boot-time) boot_time=$2; shift 2 ;;
    --price-per-tb) [[ $2 =~ $number ]] || usage "--price-per-tb takes a number of dollars, not '$2'"; price=$2; shift 2 ;;
    --budget) [[ $2 =~ $number ]] || usage "--budget takes a number of dollars, not '$2'"; budget=$2; shift 2 ;;
    --drill-interval) [[ $2 =~ ^[1-9][0-9]*$ ]] || usage "--drill-interval takes whole seconds, not '$2'"; drill_interval=$2; shift 2 ;;
    --filesystem) filesystems+=("$2"); shift 2 ;;
    --no-filesystems) find_filesystems=0; shift ;;
    --now) now=$2; shift 2 ;;
    --json | --prometheus) [ "$mode" = screen ] || usage "--json and --prometheus exclude each other" ;;&
    --json) mode=json; shift ;;
    --prometheus) mode=prometheus; prom=$2; shift 2 ;;
    *) usage "unknown argument: $1" ;;
  esac
done
now=${now:-$(date +%s)}
boot_time=${boot_time:-$(awk '$1 == "btime" { print $2 }' /proc/stat)}
[[ $now =~ ^[0-9]+$ && $boot_time =~ ^[0-9]+$ ]] || usage "--now and --boot-time take whole epoch seconds"

# --- Inputs, gathered into one JSON document --------------------------------
# A mistyped --state-dir would look like a host where nothing ever ran.
[ -d "$state_dir" ] || echo "$me: the state directory $state_dir does not exist: every job shows as never run" >&2
json_file() { # json_file FILE [CONDITION]: its JSON object, {"invalid":true} if unreadable or not so, null if missing
  local out=''
  [ -e "$1" ] || { echo null; return; }
  # -s: an empty file, or two documents, are not one object either.
  out=$(jq -cs "if length == 1 and (.[0] | type) == \"object\" and (.[0] | ${2:-true}) then .[0] else error end" "$1" 2>/dev/null) || out=''
  echo "${out:-{\"invalid\":true\}}"
}
run='(.result | type) == "string" and (.finished | type) == "number"'
jobs=$(for j in backup backup-check restore-drill snapshots; do
  cond=$run
  [ "$j" != snapshots ] || cond="$run and (.interval_seconds | type) == \"number\" and (.subvolumes | type) == \"object\""
  printf '{"%s":%s}\n' "$j" "$(json_file "$state_dir/$j.json" "$cond")"
done | jq -cs add)

rot=null
if [ "$rotation" = 1 ]; then
  err=$(mktemp)
  list=''
  if [ -n "$rr_json" ]; then
    list=$(jq -c 'if type == "array" then . else error("not an array") end' "$rr_json" 2>"$err") || list=''
  else
    read -r -a words <<<"$rr_args"
    if command -v root-rotate >/dev/null; then
      list=$(root-rotate list --json "${words[@]}" 2>"$err" | jq -c 'if type == "array" then . else error("not an array") end' 2>>"$err") || list=''
    else
      echo "root-rotate is not installed (give --root-rotate-args, --root-rotate-json or --no-rotation)" >"$err"
    fi
  fi
  rot=$(jq -cn --argjson list "${list:-null}" --arg err "$(grep -v '^[[:space:]]*$' "$err" | tail -n1)" \
    --argjson status "$(json_file "$boot_status")" \
    '{list: $list, list_error: (if $list == null then ($err | if . == "" then "no output" else . end) else null end), status: $status}')
  rm -f "$err"
fi

if [ ${#filesystems[@]} -eq 0 ] && [ "$find_filesystems" = 1 ]; then
  mapfile -t filesystems < <(findmnt -rn -t btrfs -o SOURCE,TARGET 2>/dev/null |
    awk '{ sub(/\[.*\]$/, "", $1); if (!seen[$1]++) print $2 }' | sed 's/\\x20/ /g')
fi
disks=$(for fs in "${filesystems[@]}"; do
  usage_out=$(LC_ALL=C btrfs filesystem usage -b "$fs" 2>&1) && u_rc=0 || u_rc=$?
  stats_out=$(LC_ALL=C btrfs device stats "$fs" 2>&1) && s_rc=0 || s_rc=$?
  jq -cn --arg mount "$fs" --arg u "$usage_out" --arg s "$stats_out" --argjson urc "$u_rc" --argjson src "$s_rc" '
    def field($k): [$u | splits("\n") | select(test("^\\s*" + $k + ":")) | sub("^[^:]*:\\s*"; "") | tonumber] | first;
    {mount: $mount,
     error: (if $urc != 0 then ($u | split("\n") | map(select(. != "")) | last)
             elif $src != 0 then ($s | split("\n") | map(select(. != "")) | last)
             elif field("Device size") == null or field("Device unallocated") == null then "no Device size/unallocated in btrfs filesystem usage"
             else null end),
     size_bytes: (if $urc == 0 then field("Device size") else null end),
     unallocated_bytes: (if $urc == 0 then field("Device unallocated") else null end),
     errors: ([$s | splits("\n") | capture("^\\[(?<dev>[^]]*)\\]\\.(?<type>\\w+)\\s+(?<n>[0-9]+)$")]
              | group_by(.type) | map({(.[0].type): (map(.n | tonumber) | add)}) | add // {})}'
done | jq -cs .)

input=$(jq -cn --argjson now "$now" --argjson boot "$boot_time" --arg host "${HOSTNAME:-$(uname -n)}" \
  --argjson jobs "$jobs" --argjson rotation "$rot" --argjson disks "$disks" \
  --arg price "$price" --arg budget "$budget" --arg bsf "$boot_status" \
  '{now: $now, boot_time: $boot, host: $host, jobs: $jobs, rotation: $rotation, disks: $disks, boot_status_file: $bsf,
    price_per_tb: (if $price == "" then null else ($price | tonumber) end),
    budget: (if $budget == "" then null else ($budget | tonumber) end)}')

# --- The model: facts with status, time, summary and metrics ----------------
model=$(jq -c --argjson backup_stale $((26 * 3600)) --argjson check_stale $((8 * 86400)) \
  --argjson drill_stale $((${drill_interval:-$((30 * 86400))} + 5 * 86400)) --argjson drill_interval "${drill_interval:-null}" --argjson low_bytes $((10 * 1024 * 1024 * 1024)) --argjson low_ratio 0.05 '
  . as $in | $in.now as $now
  | def dur: if . < 90 then "\(floor) s" elif . < 5400 then "\(. / 60 | round) min"
             elif . < 172800 then "\(. / 3600 | round) h" else "\(. / 86400 | round) d" end;
    def ago: if . == null then "never" elif $now - . < 0 then "in \(. - $now | dur)" elif $now - . < 1 then "now"
             else "\($now - . | dur) ago" end;
    def fixed2: (. * 100 | round) as $c | "\($c / 100 | floor).\($c % 100 | tostring | if length < 2 then "0" + . else . end)";
    def gb: "\(. / 1e9 | fixed2) GB";
    def gib: "\(. / 1073741824 | fixed2) GiB";
    def m($name; $labels; $v): if $v == null then empty else {name: $name, labels: $labels, value: $v} end;
    def m($name; $v): m($name; {}; $v);
    def n($word): "\(.) \($word)\(if . == 1 then "" else "s" end)";
    def bit: if . then 1 else 0 end;
    def fact($id; $what; $status; $time; $summary; $metrics):
      {id: $id, what: $what, status: $status, time: $time, age_seconds: (if $time == null then null else $now - $time end),
       age: ($time | ago), summary: $summary, metrics: $metrics};
    def never($id; $what; $file): fact($id; $what; "warn"; null; "never ran (no \($file))"; []);
    def unreadable($id; $what; $file): fact($id; $what; "warn"; null; "\($file) is unreadable (not a result record)"; []);

  # Rotation: root-rotate list --json and the boot record.
  [ ($in.rotation // empty) as $r
    | ($r.status // {}) as $st
    # The file is in /run, emptied at every boot; the time check only guards
    # against a copy elsewhere. An hour of slack: rotate stamps it with the
    # clock of the initrd, which NTP may later set back (moving btime forward).
    | ($r.status != null and ($st.time | type) == "number" and $st.time >= $in.boot_time - 3600) as $ran
    | ($r.list // []) as $l
    | ($l | map(.time | try fromdateiso8601 catch empty) | max) as $newest
    | ($l | map(select(.keep == false)) | length) as $due
    | (if $r.list == null then "archives unknown: \($r.list_error)"
       else "\($l | length | n("archive")), newest \($newest | ago), \($due) due for deletion" end) as $arch
    | fact("rotation"; "rotation";
        if ($ran | not) or $st.exit_code != 0 then "fail"
        elif $r.list == null or ($st.failed // 0) > 0 then "warn" else "ok" end;
        if $r.status == null then null else $st.time end;
        (if $r.status == null then "did not run at this boot (no boot record)"
         elif $st.invalid then "boot record unreadable (\($in.boot_status_file))"
         elif ($ran | not) then "did not run at this boot (last record from before it)"
         elif $st.exit_code != 0 then "failed at boot (exit \($st.exit_code)): \($st.error // "no message")"
         else "ran at boot (exit 0), archived \($st.archived // "nothing"), pruned \($st.pruned // 0), deferred \($st.deferred // 0)\(if ($st.failed // 0) > 0 then ", \($st.failed) could not be deleted" else "" end)" end)
        + "; " + $arch;
        [m("storage_rotation_boot_ran"; $ran | bit),
         (if $ran then m("storage_rotation_boot_exit_code"; $st.exit_code) else empty end),
         (if $r.list == null then empty else
           m("storage_rotation_archives"; $l | length), m("storage_rotation_backlog_archives"; $due),
           m("storage_rotation_last_timestamp_seconds"; $newest) end)])
  ]
  # Snapshots: one fact per subvolume (btrbk-storage.service run record).
  + ($in.jobs.snapshots as $s
    | if $s == null then [never("snapshots"; "snapshots"; "snapshots.json")]
      elif $s.invalid then [unreadable("snapshots"; "snapshots"; "snapshots.json")]
      else ($s.result == "success") as $ok | $s.interval_seconds as $iv
      | [m("storage_snapshot_interval_seconds"; $iv), m("storage_snapshot_last_run_success"; $ok | bit)] as $run
      | [$s.subvolumes | to_entries[] | .key as $sv | .value as $v
        | ($v.last_success == null or $now - $v.last_success > 2 * $iv) as $stale
        | fact("snapshots:\($sv)"; "snapshots \($sv)";
            if ($ok | not) then "fail" elif $stale or ($v.violations | length) > 0 then "warn" else "ok" end;
            $v.last_success;
            ([if $ok then empty else "last run failed (\($s.service_result // "failure"), exit \($s.exit_code)) \($s.finished | ago)" end,
              if $stale then "stale: last snapshot \($v.last_success | ago) (limit \(2 * $iv | dur))" else empty end,
              "\($v.count) kept (at most \($v.max_count)), newest \($v.newest | ago)"] + $v.violations | join("; "));
            [m("storage_snapshot_last_success_timestamp_seconds"; {subvolume: $sv}; $v.last_success),
             m("storage_snapshot_kept"; {subvolume: $sv}; $v.count),
             m("storage_snapshot_kept_max"; {subvolume: $sv}; $v.max_count),
             m("storage_snapshot_retention_violations"; {subvolume: $sv}; $v.violations | length),
             m("storage_snapshot_failures_total"; {subvolume: $sv}; $v.failures_total)])]
      | if . == [] then [fact("snapshots"; "snapshots"; if $ok then "warn" else "fail" end; $s.finished; "no subvolumes in snapshots.json"; $run)]
        else .[0].metrics += $run end
      end)
  # Offsite backup.
  + [$in.jobs.backup as $b
    | if $b == null then never("backup"; "backup"; "backup.json")
      elif $b.invalid then unreadable("backup"; "backup"; "backup.json")
      else ($b.last_success == null or $now - $b.last_success > $backup_stale) as $stale
      | fact("backup"; "backup"; if $b.result != "success" then "fail" elif $stale then "warn" else "ok" end; $b.finished;
          ([if $b.result == "failure" then "\($b.error // "failed") (exit \($b.exit_code))"
            elif $b.result == "incomplete" then "incomplete (exit \($b.exit_code)): \($b.errors | n("error")), snapshot \($b.snapshot // "?") saved without the unreadable files"
            else "snapshot \($b.snapshot), \($b.added_bytes // 0 | gb) added, \($b.files_new // 0 | n("new file")), \($b.errors | n("error")), took \($b.duration_seconds | dur)" end,
            if $stale or $b.result != "success" then "last success \($b.last_success | ago)\(if $stale then " (limit \($backup_stale | dur))" else "" end)" else empty end,
            if $b.repository_size_bytes != null then "repository \($b.repository_size_bytes | gb)" else empty end] | join("; "));
          [m("storage_backup_last_success_timestamp_seconds"; $b.last_success),
           m("storage_backup_last_run_timestamp_seconds"; $b.finished),
           m("storage_backup_last_run_success"; $b.result == "success" | bit),
           m("storage_backup_duration_seconds"; $b.duration_seconds),
           m("storage_backup_added_bytes"; $b.added_bytes),
           m("storage_backup_repository_size_bytes"; $b.repository_size_bytes),
           m("storage_backup_exit_code"; $b.exit_code),
           m("storage_backup_errors"; $b.errors),
           m("storage_backup_failures_total"; $b.failures_total // 0)])
      end]
  # Weekly read-back and restore drill: success and when the last run ended.
  + [$in.jobs."backup-check" as $c
    | if $c == null then never("check"; "backup check"; "backup-check.json")
      elif $c.invalid then unreadable("check"; "backup check"; "backup-check.json")
      else ($now - $c.finished > $check_stale) as $stale
      | fact("check"; "backup check"; if $c.result != "success" then "fail" elif $stale then "warn" else "ok" end; $c.finished;
          (if $c.result != "success" then "\($c.error // "failed") (exit \($c.exit_code)); last success \($c.last_success | ago)"
           else "repository sound, pack subset \($c.subset) read back" end)
          + (if $stale then "; stale (limit \($check_stale | dur))" else "" end);
          [m("storage_backup_check_success"; $c.result == "success" | bit), m("storage_backup_check_timestamp_seconds"; $c.finished)])
      end]
  + [$in.jobs."restore-drill" as $d
    | if $d == null then never("drill"; "restore drill"; "restore-drill.json")
      elif $d.invalid then unreadable("drill"; "restore drill"; "restore-drill.json")
      else ($now - $d.finished > $drill_stale) as $stale | ($d.checks | if type == "array" then . else [] end) as $ch
      | fact("drill"; "restore drill"; if $d.result != "success" then "fail" elif $stale then "warn" else "ok" end; $d.finished;
          (if $d.result != "success" then "\($d.error // "failed")"
           else "\($ch | map(select(.ok)) | length)/\($ch | length) checks passed, snapshot \($d.snapshot // "?" | tostring | .[0:8]) of \($d.snapshot_time // "?" | tostring | sub("[.][0-9]+"; ""))" end)
          + (if $stale then "; stale (limit \($drill_stale | dur))" else "" end);
          [m("storage_restore_drill_success"; $d.result == "success" | bit),
           m("storage_restore_drill_timestamp_seconds"; $d.finished),
           m("storage_restore_drill_duration_seconds"; $d.duration_seconds)]
          + (if $drill_interval == null then [] else [m("storage_restore_drill_interval_seconds"; $drill_interval)] end))
      end]
  # Btrfs filesystems (their metrics come from node_exporter itself).
  + [$in.disks[] as $f
    | ($f.errors | to_entries | map(select(.value > 0))) as $bad
    | ($f.error == null and $f.unallocated_bytes < $low_bytes and $f.unallocated_bytes < $low_ratio * $f.size_bytes) as $low
    | fact("disk:\($f.mount)"; "disk \($f.mount)";
        if $f.error != null then "warn" elif ($bad | length) > 0 then "fail" elif $low then "warn" else "ok" end; $now;
        if $f.error != null then "cannot read: \($f.error)"
        else "\($f.unallocated_bytes | gib) unallocated of \($f.size_bytes | gib) (\($f.unallocated_bytes * 100 / $f.size_bytes | floor) %)"
          + (if $low then ", low (under 10 GiB and 5 %)" else "" end)
          + (if ($bad | length) > 0 then "; device errors: " + ($bad | map("\(.key) \(.value)") | join(", ")) else "; no device errors" end) end;
        [])
    | .unallocated_bytes = $f.unallocated_bytes | .size_bytes = $f.size_bytes | .device_errors = $f.errors]
  # Offsite cost: repository size x price, against the budget.
  + [select($in.price_per_tb != null) | $in.jobs.backup.repository_size_bytes as $size
    | (if $size == null then null else ($size / 1e12 * $in.price_per_tb * 10000 | round) / 10000 end) as $cost
    | fact("cost"; "cost";
        if $cost == null or ($in.budget != null and $cost > $in.budget) then "warn" else "ok" end; $in.jobs.backup.finished;
        if $cost == null then "unknown: no repository size yet"
        else "$\($cost | fixed2) a month for \($size | gb) at $\($in.price_per_tb | fixed2)/TB"
          + (if $in.budget == null then "" elif $cost > $in.budget then ", over the budget of $\($in.budget | fixed2)"
             else ", budget $\($in.budget | fixed2)" end) end;
        [m("storage_backup_estimated_monthly_cost_dollars"; $cost)])]
  | . as $facts
  | ([$facts[].status] | if index("fail") then "fail" elif index("warn") then "warn" else "ok" end) as $status
  | {host: $in.host, generated: $now, status: $status,
     exit_code: {ok: 0, warn: 1, fail: 2}[$status], facts: $facts,
     metrics: ([$facts[].metrics[]]
       + [m("storage_backup_monthly_budget_dollars"; $in.budget), m("storage_status_generated_timestamp_seconds"; $now)])}
  ' <<<"$input") || { echo "$me: cannot build the status model (a bug: report it with the files in $state_dir)" >&2; exit 70; }
rc=$(jq -r .exit_code <<<"$model")

# --- Renderings --------------------------------------------------------------
case $mode in
  json) jq . <<<"$model" ;;
  prometheus)
    write_metrics() { # the model's metrics to $prom.tmp
      jq -r '
      {storage_rotation_last_timestamp_seconds: ["gauge", "Stamp of the newest root-rotate archive (Unix time)."],
       storage_rotation_archives: ["gauge", "Archived roots in the archive directory."],
       storage_rotation_backlog_archives: ["gauge", "Archives due for deletion (keep=false) not yet deleted."],
       storage_rotation_boot_ran: ["gauge", "1 if root-rotate rotate ran at this boot, else 0."],
       storage_rotation_boot_exit_code: ["gauge", "Exit code of root-rotate rotate at this boot."],
       storage_snapshot_last_success_timestamp_seconds: ["gauge", "End of the last successful btrbk run that made a snapshot of the subvolume."],
       storage_snapshot_kept: ["gauge", "Snapshots of the subvolume in the snapshot directory."],
       storage_snapshot_kept_max: ["gauge", "Most snapshots the retention policy can keep."],
       storage_snapshot_retention_violations: ["gauge", "Retention violations: too many kept, days missing in the daily window."],
       storage_snapshot_failures_total: ["counter", "Failed btrbk runs."],
       storage_snapshot_interval_seconds: ["gauge", "Interval of the snapshot timer."],
       storage_snapshot_last_run_success: ["gauge", "1 if the last btrbk run succeeded, else 0."],
       storage_backup_last_success_timestamp_seconds: ["gauge", "End of the last successful offsite backup."],
       storage_backup_last_run_timestamp_seconds: ["gauge", "End of the last offsite backup run."],
       storage_backup_last_run_success: ["gauge", "1 if the last backup run succeeded, 0 if it failed or was incomplete."],
       storage_backup_duration_seconds: ["gauge", "Duration of the last backup run."],
       storage_backup_added_bytes: ["gauge", "Bytes the last backup added to the repository."],
       storage_backup_repository_size_bytes: ["gauge", "Size of the restic repository (raw data)."],
       storage_backup_exit_code: ["gauge", "Exit code of the last backup run."],
       storage_backup_errors: ["gauge", "restic errors (unreadable files, retried transfers) of the last run."],
       storage_backup_failures_total: ["counter", "Failed or incomplete backup runs."],
       storage_backup_check_success: ["gauge", "1 if the last restic check succeeded, else 0."],
       storage_backup_check_timestamp_seconds: ["gauge", "End of the last restic check run."],
       storage_restore_drill_success: ["gauge", "1 if the last restore drill passed, else 0."],
       storage_restore_drill_timestamp_seconds: ["gauge", "End of the last restore drill."],
       storage_restore_drill_duration_seconds: ["gauge", "Duration of the last restore drill."],
       storage_restore_drill_interval_seconds: ["gauge", "Period of the drill timer; the drill is stale 5 days after it."],
       storage_backup_estimated_monthly_cost_dollars: ["gauge", "Repository size times the storage price, per month."],
       storage_backup_monthly_budget_dollars: ["gauge", "Monthly budget for the offsite storage."],
       storage_status_generated_timestamp_seconds: ["gauge", "When storage-status wrote these metrics."]} as $meta
      | def esc: gsub("\\\\"; "\\\\") | gsub("\n"; "\\n") | gsub("\""; "\\\"");
      .metrics | group_by(.name) | sort_by(.[0].name)[]
      | "# HELP \(.[0].name) \($meta[.[0].name][1])", "# TYPE \(.[0].name) \($meta[.[0].name][0])",
        (.[] | "\(.name)\(if .labels == {} then "" else "{" + (.labels | to_entries | map("\(.key)=\"\(.value | esc)\"") | join(",")) + "}" end) \(.value)")
    ' <<<"$model" >"$prom.tmp"
    }
    if ! { write_metrics && chmod 644 "$prom.tmp" && mv -f "$prom.tmp" "$prom"; }; then
      echo "$me: cannot write $prom" >&2
      rm -f "$prom.tmp"
      exit 73
    fi
    ;;
  screen)
    color=0
    [ -t 1 ] && [ -z "${NO_COLOR:-}" ] && color=1
    jq -r --argjson color "$color" '
      def pad($n): if length < $n then . + (" " * ($n - length)) else . end;
      def mark: {ok: "OK", warn: "WARN", fail: "FAIL"}[.] as $t
        | if $color == 1 then {ok: "\u001b[32m", warn: "\u001b[33m", fail: "\u001b[1;31m"}[.] + $t + "\u001b[0m" + (" " * (4 - ($t | length)) + " ")
          else $t | pad(5) end;
      ([.facts[].what | length] | max // 0) as $w
      | (.facts | map(.status) | {fail: map(select(. == "fail")) | length, warn: map(select(. == "warn")) | length}) as $n
      | "storage on \(.host) at \(.generated | strflocaltime("%Y-%m-%d %H:%M %Z")): \(.status | ascii_upcase) (\($n.fail) fail, \($n.warn) warn)",
        (.facts[] | "\(.status | mark) \(.what | pad($w))  \(.age | pad(10))  \(.summary)")
    ' <<<"$model"
    ;;
esac
exit "$rc"
