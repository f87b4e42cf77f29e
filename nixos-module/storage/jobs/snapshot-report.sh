#!/usr/bin/env bash
# storage-snapshot-report: the record of one btrbk-storage.service run, for
# storage-status. Runs as the unit's ExecStopPost, after every run, failed
# ones included:
#   storage-snapshot-report --result FILE --interval SECONDS
#     --preserve 'SPEC' --preserve-min latest|N{h,d,w,m,y} [--hour-of-day H]
#     [--service-result R] [--exit-status N] [--started EPOCH] [--now EPOCH]
#     --dir SNAPSHOT-DIR [--dir SNAPSHOT-DIR]... SUBVOLUME...
# systemd gives ExecStopPost= the run's outcome as $SERVICE_RESULT
# ("success", "exit-code", "timeout", "signal", …) and $EXIT_STATUS (a
# number, or a signal name such as TERM); --service-result/--exit-status
# override them (tests, manual runs). Without either there is no outcome to
# record: usage error.
# --preserve and --preserve-min are btrbk's snapshot_preserve ("48h 30d 12w
# 12m", "no") and snapshot_preserve_min; --hour-of-day its
# preserve_hour_of_day; --interval the timer's period in seconds.
# It lists btrbk's snapshots `<SUBVOLUME>.<YYYYMMDD>T<HHMM>[_N]` (timestamp_format
# long, local time) in every SNAPSHOT-DIR (/mnt/btrfs/<disk>/@snapshots) and
# writes FILE (JSON, temp + rename):
#   {"job":"snapshots","result":"success"|"failure","finished":T,
#    "exit_code":N,"service_result":R,"interval_seconds":N,
#    "subvolumes":{"@persist":{"count":N,"newest":T|null,"last_success":T|null,
#      "failures_total":N,"max_count":N,"violations":[…]}}}
# Per subvolume:
#   last_success  carried over from the previous FILE; set to now when the run
#                 succeeded and the subvolume's newest snapshot is from this
#                 run: stamped no earlier than the minute the run started
#                 (--started; default now - interval, as systemd does not say).
#   failures_total  carried over, +1 when the run failed.
#   max_count     the most the policy can keep: btrbk keeps the first
#                 snapshot of each hour/day/week/month/year for N units back
#                 *inclusive* (units 0..N, so N+1 each), summed over the units
#                 (they overlap, so this is an upper bound), plus the
#                 preserve-min window: 1 for `latest`, else (N+1) units
#                 divided by the interval, rounded up (month 31 d, year 366 d).
#   violations    "too many: N > MAX" when more are kept than that (btrbk
#                 does not prune); "missing daily: YYYY-MM-DD" for each day
#                 of the daily window (days 1..N back; a day starts at
#                 --hour-of-day) after the day of the oldest snapshot and
#                 before today that holds no snapshot (the timer did not run,
#                 or btrbk failed all day).
# Exit 0 when FILE was written; 2 on a usage error; 1 otherwise.
set -euo pipefail

me=storage-snapshot-report
usage() {
  echo "usage: $me --result FILE --interval SECONDS --preserve SPEC --preserve-min latest|N{h,d,w,m,y} [--hour-of-day H] [--service-result R] [--exit-status N] [--started EPOCH] [--now EPOCH] --dir DIR [--dir DIR]... SUBVOLUME..." >&2
  exit 2
}
result='' interval='' preserve='' pmin='' hod=0 started='' now=''
service_result=${SERVICE_RESULT:-} exit_status=${EXIT_STATUS:-}
dirs=() subvols=()
while [ $# -gt 0 ]; do
  case $1 in
    --result | --interval | --preserve | --preserve-min | --hour-of-day | --service-result | --exit-status | --started | --now | --dir)
      [ $# -ge 2 ] || usage ;;&
    --result) result=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --preserve) preserve=$2; shift 2 ;;
    --preserve-min) pmin=$2; shift 2 ;;
    --hour-of-day) hod=$2; shift 2 ;;
    --service-result) service_result=$2; shift 2 ;;
    --exit-status) exit_status=$2; shift 2 ;;
    --started) started=$2; shift 2 ;;
    --now) now=$2; shift 2 ;;
    --dir) dirs+=("${2%/}"); shift 2 ;;
    -*) usage ;;
    *) subvols+=("$1"); shift ;;
  esac
done
{ [ -n "$result" ] && [ ${#dirs[@]} -gt 0 ] && [ ${#subvols[@]} -gt 0 ] && [ -n "$service_result" ]; } || usage
[[ $interval =~ ^[1-9][0-9]*$ ]] || usage
[[ $hod =~ ^([0-9]|1[0-9]|2[0-3])$ ]] || usage
[[ $pmin =~ ^(latest|[1-9][0-9]*[hdwmy])$ ]] || usage
[[ $preserve =~ ^(no|[0-9]+[hdwmy]( +[0-9]+[hdwmy])*)$ ]] || usage
now=${now:-$(date +%s)}
started=${started:-$((now - interval))}
[[ $now =~ ^[0-9]+$ && $started =~ ^[0-9]+$ ]] || usage

# The exit status as a number: a signal name (TERM) becomes 128 + its number.
case $exit_status in
  '') if [ "$service_result" = success ]; then exit_code=0; else exit_code=1; fi ;;
  *[!0-9]*) exit_code=$((128 + $(kill -l "${exit_status#SIG}" 2>/dev/null || echo 0))) ;;
  *) exit_code=$exit_status ;;
esac

# Every entry of the snapshot directories (btrbk's names are picked below).
names=()
for d in "${dirs[@]}"; do
  if [ -d "$d" ]; then
    mapfile -t -O "${#names[@]}" names < <(find "$d" -mindepth 1 -maxdepth 1 -printf '%f\n')
  else
    echo "$me: warning: $d is not a directory" >&2
  fi
done
prev='{}'
[ -r "$result" ] && prev=$(jq -ce 'objects' "$result" 2>/dev/null || echo '{}')

mkdir -p "$(dirname "$result")"
printf '%s\n' "${names[@]}" | jq -Rn \
  --argjson now "$now" --argjson started "$started" --argjson interval "$interval" --argjson hod "$hod" \
  --arg preserve "$preserve" --arg pmin "$pmin" --arg sr "$service_result" --argjson rc "$exit_code" \
  --argjson prev "$prev" --args '
  # Times: a stamp is local wall-clock time. wall: read as if UTC (for
  # day arithmetic, as btrbk does with the local fields); epoch: the real
  # time, through the local UTC offset (found twice, for DST changes).
  def wall: strptime("%Y%m%dT%H%M") | mktime;
  def offset: (strflocaltime("%Y-%m-%dT%H:%M:%SZ") | fromdateiso8601) - .;
  def epoch: wall as $w | ($w - ($w | offset)) as $e | $w - ($e | offset);
  def day: ((wall - $hod * 3600) / 86400 | floor);      # day number; days start at $hod
  def unit_seconds: {h: 3600, d: 86400, w: 604800, m: 2678400, y: 31622400}[.];
  ([inputs | select(. != "")]) as $names
  | ($sr == "success" and $rc == 0) as $ok
  | (if $preserve == "no" then 0
     else [$preserve | scan("([0-9]+)([hdwmy])") | .[0] | tonumber | select(. > 0) | . + 1] | add // 0 end) as $buckets
  | (if $pmin == "latest" then 1
     else ($pmin | capture("(?<n>[0-9]+)(?<u>[hdwmy])")) as $m
       | (($m.n | tonumber) + 1) * ($m.u | unit_seconds) / $interval | ceil end) as $min_count
  | ([$preserve | scan("([0-9]+)d") | .[0] | tonumber] | add // 0) as $daily
  | ($now | strflocaltime("%Y%m%dT%H%M") | day) as $today
  | {job: "snapshots", result: (if $ok then "success" else "failure" end), finished: $now,
     exit_code: $rc, service_result: $sr, interval_seconds: $interval,
     subvolumes: ($ARGS.positional | map(. as $sv
       | [$names[] | select(startswith($sv + ".")) | ltrimstr($sv + ".")
          | select(test("^[0-9]{8}T[0-9]{4}(_[0-9]+)?$")) | .[0:13]
          | select(try (wall | true) catch false)] as $stamps
       | ($stamps | map(epoch) | max) as $newest
       | ($stamps | map(day) | unique) as $days
       | ($buckets + $min_count) as $max
       | {($sv): {
           count: ($stamps | length),
           newest: $newest,
           last_success: (if $ok and $newest != null and $newest >= ($started / 60 | floor) * 60 then $now
                          else $prev.subvolumes[$sv].last_success end),
           failures_total: (($prev.subvolumes[$sv].failures_total // 0) + (if $ok then 0 else 1 end)),
           max_count: $max,
           violations: (
             (if ($stamps | length) > $max then ["too many: \($stamps | length) > \($max)"] else [] end)
             + (if $daily > 0 and ($days | length) > 0 then
                  [range([$today - $daily, $days[0] + 1] | max; $today) | select(. as $d | $days | index($d) | not)
                   | "missing daily: \(. * 86400 | strftime("%Y-%m-%d"))"]
                else [] end))
         }}) | add)}
  ' "${subvols[@]}" >"$result.tmp"
mv -f "$result.tmp" "$result"
jq -r --arg me "$me" '.subvolumes | to_entries[] | "\($me): \(.key): \(.value.count) snapshots (at most \(.value.max_count))\(if .value.violations == [] then "" else "; " + (.value.violations | join("; ")) end)"' "$result"
