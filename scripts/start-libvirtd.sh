#!/usr/bin/env bash
# Makes sure a libvirtd answers on qemu:///system, for the libvirt backend's
# tests and CI. Idempotent and careful with real hosts:
#   - if a libvirtd already answers (systemd-managed or not), it changes
#     nothing and starts nothing;
#   - otherwise it prepares what a Debian host without systemd lacks (the
#     libvirt-qemu user and kvm group, /var/log/libvirt, qemu.conf settings
#     that are not set yet) and starts virtlogd and libvirtd as daemons.
# On stdout it prints the PIDs of the daemons it started, one per line
# ("started virtlogd 123"), so a caller can stop exactly those with
# scripts/stop-libvirtd.sh PID... when it is done. Nothing printed = nothing
# started. Diagnostics go to stderr.
#
# Needs root and the packages libvirt-daemon, libvirt-daemon-driver-qemu and
# libvirt-clients (scripts/install-host-deps.sh installs them).
set -euo pipefail

uri=qemu:///system
say() { echo "start-libvirtd: $*" >&2; }

answers() { timeout 30 virsh -q -c "$uri" uri >/dev/null 2>&1; }

for tool in virsh libvirtd virtlogd; do
  command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
  command -v "$tool" >/dev/null || {
    say "missing $tool; install the host packages with: sudo bash scripts/install-host-deps.sh"
    exit 1
  }
done

if [ -S /run/libvirt/libvirt-sock ] && answers; then
  say "libvirtd already answers on $uri; nothing to do"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  say "libvirtd is not running and starting it needs root"
  exit 1
fi

# Debian's libvirt-daemon-system (which brings systemd units) creates these;
# without it the QEMU driver refuses to load.
# (Debian's build also looks up a libvirt-qemu group at start.)
getent group kvm >/dev/null || groupadd --system kvm
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd --system --gid kvm --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
mkdir -p /var/log/libvirt /var/log/libvirt/qemu /var/lib/libvirt/qemu /run/libvirt

# QEMU as root and no security driver: containers and CI machines have
# neither AppArmor profiles nor a usable SELinux. Only keys that the file does
# not set yet are added, so an operator's choices are kept.
conf=/etc/libvirt/qemu.conf
touch "$conf"
grep -qE '^[[:space:]]*user[[:space:]]*=' "$conf" || echo 'user = "root"' >>"$conf"
grep -qE '^[[:space:]]*group[[:space:]]*=' "$conf" || echo 'group = "root"' >>"$conf"
grep -qE '^[[:space:]]*security_driver[[:space:]]*=' "$conf" || echo 'security_driver = "none"' >>"$conf"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# start_daemon NAME TENTHS_OF_SECONDS HINT: start NAME -d unless its pidfile names a live process.
start_daemon() {
  local name=$1 pidfile=/run/$1.pid
  alive "$pidfile" && return 0
  rm -f "$pidfile"
  "$name" -d
  for _ in $(seq "$2"); do alive "$pidfile" && break; sleep 0.1; done
  alive "$pidfile" || { say "$name did not start$3"; exit 1; }
  echo "started $name $(cat "$pidfile")"
}

start_daemon virtlogd 50 ""
start_daemon libvirtd 100 "; see /var/log/libvirt"

# The first connection probes QEMU's capabilities (several seconds).
for _ in $(seq 60); do
  answers && exit 0
  sleep 1
done
say "libvirtd runs but does not answer on $uri after 60 s"
exit 1
