#!/usr/bin/env bash
# storage: the admin's command on a host with storage.monitoring.
#   storage status [--json | --prometheus FILE]
# Runs storage-status with this host's inputs: its arguments are the lines
# of STORAGE_STATUS_ARGS_FILE (/etc/storage/status.args, written by the
# NixOS module), the same ones the metrics timer uses, so the screen and
# the metrics read the same facts. Exit status: storage-status's (0 OK,
# 1 WARN, 2 FAIL), 64 on a usage error.
set -euo pipefail

args_file=${STORAGE_STATUS_ARGS_FILE:-/etc/storage/status.args}
case ${1:-} in
  status)
    shift
    args=()
    if [ -e "$args_file" ]; then mapfile -t args <"$args_file"; fi
    exec storage-status "${args[@]}" "$@"
    ;;
  *)
    echo "usage: storage status [--json | --prometheus FILE]" >&2
    exit 64
    ;;
esac
