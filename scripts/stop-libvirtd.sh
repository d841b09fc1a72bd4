#!/usr/bin/env bash
# Stops the daemons scripts/start-libvirtd.sh started, by the PIDs it printed:
#   stop-libvirtd.sh 1234 1240
# Each PID is checked to still be a libvirtd or virtlogd before it is
# signalled, so a recycled PID is never hit. libvirtd goes first (it talks
# to virtlogd); QEMU guests it ran keep running unless the caller removed
# them, as with any libvirtd restart.
set -euo pipefail

stop_one() {
  local pid=$1 comm
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
  case "$comm" in
    libvirtd | virtlogd) ;;
    *)
      echo "stop-libvirtd: PID $pid is \"$comm\", not a libvirt daemon; left alone" >&2
      return 0
      ;;
  esac
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "stop-libvirtd: $comm ($pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# libvirtd before virtlogd, whatever order they were given in.
ordered=()
for pid in "$@"; do [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] && ordered+=("$pid"); done
for pid in "$@"; do [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] || ordered+=("$pid"); done
for pid in "${ordered[@]}"; do stop_one "$pid"; done
