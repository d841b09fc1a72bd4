#!/usr/bin/env bash
# Installs the Debian packages hyperkern's tests and backends use, when they
# are missing. Needs root (apt-get); prints what is missing otherwise.
#   install-host-deps.sh          everything the test suite uses (npm test, CI)
#   install-host-deps.sh runtime  what the default config (QEMU backend) needs (npm start)
set -euo pipefail
runtime=(qemu-system-x86 qemu-utils iproute2)
packages=(
  qemu-system-x86 qemu-utils iproute2   # the QEMU backend (ip: taps) and its tests
  busybox-static cpio          # the tiny Linux test guest's initramfs
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients   # the libvirt backend (virsh) and its tests
  python3-msgpack              # the non-TypeScript isolated sub-agent in tests
  sqlite3                      # inspecting the state file by hand
  prometheus                   # a real Prometheus scraping GET /metrics in tests (and promtool)
  chromium                     # the GET /docs test (headless, driven by playwright-core)
  tmux                         # the CLI tests run it in a real terminal
  inotify-tools                # inotifywait: image tests prove a refused image opened no host file
  systemd                      # systemd-analyze verify of deploy/hyperkern.service
  golang-go                    # the Go client of the conformance suite (test/go-client, stdlib only, built offline)
  etcd-server etcd-client      # the fleet link's tests and benchmark (a real etcd 3.4, etcdctl)
  skopeo umoci                 # container images: fetched (skopeo) and unpacked once (umoci)
  docker-registry              # a real OCI registry on loopback in the container image tests
  lxc crun                     # the container runtimes measured by bench/container-runtimes.sh
)
# Daemons these packages would start and enable at boot (package:unit). The
# tests start their own (by PID, on their own ports and dirs): installing
# test prerequisites must leave none running and none enabled, or a
# hypervisor host would run an etcd after its next reboot.
services=(
  etcd-server:etcd.service prometheus:prometheus.service docker-registry:docker-registry.service
  lxc:lxc.service lxc:lxc-net.service lxc:lxc-monitord.service
)
[ "${1:-all}" = runtime ] && packages=("${runtime[@]}")
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

# Not enabled at boot: systemctl disable removes the .wants and alias links
# a postinst made (and the SysV rc.d links); it works without systemd as
# PID 1 too. Links it leaves (no systemctl) are removed by hand. A daemon
# this run installed is stopped if it runs anyway; one that was there before
# is only reported (never stop a daemon this script did not start).
# HYPERKERN_KEEP_SERVICES=1 leaves alone the units of packages that were
# there before this run (a host that runs etcd for itself).
disable_services() {
  local pair pkg unit ours
  for pair in "${services[@]}"; do
    pkg=${pair%%:*} unit=${pair#*:}
    [[ " ${packages[*]} " == *" $pkg "* ]] && installed "$pkg" || continue
    [[ " ${missing[*]} " == *" $pkg "* ]] && ours=1 || ours=0
    [ "${HYPERKERN_KEEP_SERVICES:-}" = 1 ] && [ "$ours" = 0 ] && continue
    [ -e "/lib/systemd/system/$unit" ] || [ -e "/usr/lib/systemd/system/$unit" ] || continue
    if command -v systemctl >/dev/null; then systemctl disable --quiet "$unit" >/dev/null 2>&1 || true; fi
    find /etc/systemd/system -lname "*/$unit" -delete 2>/dev/null || true
    if [ -d /run/systemd/system ] && systemctl --quiet is-active "$unit" 2>/dev/null; then
      if [ "$ours" = 1 ]; then systemctl stop "$unit" || true
      else echo "install-host-deps: $unit is running (not started by this script); it no longer starts at boot; stop it with: systemctl stop $unit" >&2
      fi
    fi
  done
}

if [ ${#missing[@]} -eq 0 ]; then
  # Also cleans a host where an earlier run (or a plain apt-get) enabled them.
  if [ "$(id -u)" -eq 0 ]; then disable_services; fi
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# While apt runs, invoke-rc.d asks policy-rc.d, and 101 means "do not start":
# no postinst starts a daemon. Whatever policy-rc.d the host had comes back after.
policy=/usr/sbin/policy-rc.d saved=/usr/sbin/policy-rc.d.hyperkern-saved
[ -e "$policy" ] && mv "$policy" "$saved"
restore_policy() { rm -f "$policy"; if [ -e "$saved" ]; then mv "$saved" "$policy"; fi; }
trap restore_policy EXIT
printf '#!/bin/sh\n# hyperkern install-host-deps.sh: no daemon starts while it installs\nexit 101\n' >"$policy"
chmod 755 "$policy"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
disable_services
