#!/usr/bin/env bash
# storage-notify: report a job's result to the Datadog Agent's DogStatsD.
#   storage-notify JOB ok|warning|critical|unknown MESSAGE [--tag KEY:VALUE]...
#                  [--host HOST] [--port PORT] [--hostname NAME]
# Sends two UDP datagrams to HOST:PORT (default 127.0.0.1:8125):
#   a service check  _sc|storage.<job>|<0..3>|d:<epoch>|h:<hostname>|#job:<job>,<tags>|m:<message>
#   an event         _e{<title bytes>,<text bytes>}:<title>|<text>|d:<epoch>|h:<hostname>|p:normal|t:<type>|#<tags>
# (DogStatsD datagram format: docs.datadoghq.com, "Datagram Format and Shell
# Usage"; parsed by the agent's comp/dogstatsd/server parse_service_checks.go
# and parse_events.go.) `-` in JOB becomes `_` in the check name
# (storage.backup_check); the job:<JOB> tag keeps it as given.
#
# The message is made safe for the format: `|` (the field separator) becomes
# `/`; newlines become a space in the service check, whose m: field must be
# the last and is one line, and the two characters `\n` in the event text,
# which the agent turns back into a newline; other control characters become
# spaces. The service check message is cut to 500 characters (what Datadog
# shows), the event text to 1500, so a datagram stays under the agent's
# 8 KiB buffer. Lengths in _e{a,b} are UTF-8 bytes.
#
# UDP has no answer: exit 0 once both datagrams are handed to the kernel,
# whether or not an agent listens. Exit 1 with one line if they cannot be
# sent (an unresolvable host), 2 with one line on a usage error.
set -euo pipefail
# Count and cut characters, not bytes (C.UTF-8 is built into glibc >= 2.35).
export LC_ALL=C.UTF-8

me=storage-notify
usage() {
  echo "usage: $me JOB ok|warning|critical|unknown MESSAGE [--tag KEY:VALUE]... [--host HOST] [--port PORT] [--hostname NAME]${1:+ ($1)}" >&2
  exit 2
}

host=127.0.0.1 port=8125 hostname=${HOSTNAME:-} tags=() pos=()
while [ $# -gt 0 ]; do
  case $1 in
    --tag | --host | --port | --hostname)
      [ $# -ge 2 ] || usage "$1 needs a value"
      case $1 in
        --tag) tags+=("$2") ;;
        --host) host=$2 ;;
        --port) port=$2 ;;
        --hostname) hostname=$2 ;;
      esac
      shift 2
      ;;
    --) shift; pos+=("$@"); break ;;
    --*) usage "unknown option $1" ;;
    *) pos+=("$1"); shift ;;
  esac
done
[ ${#pos[@]} -eq 3 ] || usage "expected JOB STATUS MESSAGE, got ${#pos[@]} arguments"
job=${pos[0]} status=${pos[1]} message=${pos[2]}

[[ $job =~ ^[a-z][a-z0-9-]{0,63}$ ]] || usage "JOB must be lower-case letters, digits and -"
case $status in
  ok) code=0 alert=success ;;
  warning) code=1 alert=warning ;;
  critical) code=2 alert=error ;;
  unknown) code=3 alert=info ;;
  *) usage "STATUS must be ok, warning, critical or unknown" ;;
esac
# Datadog tags: start with a letter; letters, digits, _ - : . / only; 200 at most.
for t in "${tags[@]}"; do
  [[ $t =~ ^[A-Za-z][A-Za-z0-9_:./-]{0,199}$ && $t == *:* ]] || usage "bad tag '$t' (KEY:VALUE of letters, digits, _ - : . /)"
done
[[ $host =~ ^[A-Za-z0-9.:-]+$ ]] || usage "bad host '$host'"
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then usage "bad port '$port'"; fi
hostname=${hostname//[^A-Za-z0-9._-]/}
[ -n "$hostname" ] || hostname=$(cat /proc/sys/kernel/hostname 2>/dev/null || echo localhost)
hostname=${hostname//[^A-Za-z0-9._-]/}

check=storage.${job//-/_}
taglist=$(IFS=,; echo "job:$job${tags[*]:+,${tags[*]}}")
printf -v now '%(%s)T' -1

bytes() { # bytes STRING: its length in bytes
  local LC_ALL=C
  printf '%s' "${#1}"
}

safe=${message//|//}
sc_msg=${safe//$'\r\n'/ }
sc_msg=${sc_msg//$'\n'/ }
sc_msg=${sc_msg//[[:cntrl:]]/ }
sc_msg=${sc_msg:0:500}
text=${safe//$'\r\n'/$'\n'}
text=${text//$'\n'/\\n}
text=${text//[[:cntrl:]]/ }
text=${text:0:1500}
title="storage $job $status on $hostname"

sc="_sc|$check|$code|d:$now|h:$hostname|#$taglist${sc_msg:+|m:$sc_msg}"
ev="_e{$(bytes "$title"),$(bytes "$text")}:$title|$text|d:$now|h:$hostname|p:normal|t:$alert|#$taglist"

send() { printf '%s' "$1" >"/dev/udp/$host/$port"; }
if ! { send "$sc" && send "$ev"; } 2>/dev/null; then
  echo "$me: could not send to $host:$port (udp)" >&2
  exit 1
fi
