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
)
[ "${1:-all}" = runtime ] && packages=("${runtime[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
