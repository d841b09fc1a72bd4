#!/usr/bin/env bash
# Measures the two candidate runtimes of the container backend (issue 23) on
# this host, bare (no agent): LXC 5 (lxc-*) and crun, each running the same
# busybox-static OCI image (built offline here, unpacked once with umoci),
# each container's root an overlayfs over that read-only base. Steps, medians
# of 5 rounds, milliseconds of wall time:
#   create    LXC: lxc-create -t none + its upper dir;  crun: upper/work dirs, overlay mount, config.json
#   start     LXC: lxc-start -d + lxc-wait RUNNING;     crun: crun create + crun start
#   freeze / unfreeze   lxc-freeze / lxc-unfreeze;      crun pause / crun resume
#   stop (forced)       lxc-stop -k;                    crun kill KILL until `crun state` says stopped
#   delete    LXC: lxc-destroy;                         crun: crun delete, umount, rm
# crun runs in a mount namespace of its own without the cgroup v2 mount at
# /sys/fs/cgroup/unified (with it crun takes the host for a hybrid one it cannot use).
# Run as root, with no other benchmark running:  bash bench/container-runtimes.sh [--write]
# --write puts the table into bench/RESULTS.md between its own markers.
# Everything it starts is named ctbench-* under its own temp dir and removed at the end.
set -euo pipefail
ROUNDS=${ROUNDS:-5}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/ctbench.XXXXXX)
cleanup() {
  for n in $(lxc-ls -P "$work/lxc" 2>/dev/null); do lxc-stop -k -n "$n" -P "$work/lxc" >/dev/null 2>&1 || true; lxc-destroy -n "$n" -P "$work/lxc" >/dev/null 2>&1 || true; done
  for id in $(crun list -q 2>/dev/null | grep '^ctbench-' || true); do crun delete -f "$id" >/dev/null 2>&1 || true; done
  { grep -o " $work[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A T
record() { T["$1/$2"]+="$3"$'\n'; }

lxc_round() {
  local n=ctbench-lxc-$1 t0 t1 P=$work/lxc
  printf 'lxc.init.cmd = /bin/sleep 3600\nlxc.net.0.type = empty\nlxc.mount.auto = proc:mixed sys:mixed cgroup:mixed\n' >"$work/lxc.conf"
  t0=$(now); lxc-create -n "$n" -P "$P" -t none -f "$work/lxc.conf" >/dev/null
  mkdir "$P/$n/upper"; echo "lxc.rootfs.path = overlay:$base:$P/$n/upper" >>"$P/$n/config"; t1=$(now); record lxc create "$(ms "$t0" "$t1")"
  t0=$(now); lxc-start -n "$n" -P "$P" -d; lxc-wait -n "$n" -P "$P" -s RUNNING -t 30; t1=$(now); record lxc start "$(ms "$t0" "$t1")"
  t0=$(now); lxc-freeze -n "$n" -P "$P"; t1=$(now); record lxc freeze "$(ms "$t0" "$t1")"
  [ "$(lxc-info -n "$n" -P "$P" -sH)" = FROZEN ] || { echo "lxc: $n not frozen" >&2; exit 1; }
  t0=$(now); lxc-unfreeze -n "$n" -P "$P"; t1=$(now); record lxc unfreeze "$(ms "$t0" "$t1")"
  t0=$(now); lxc-stop -k -n "$n" -P "$P"; t1=$(now); record lxc stop "$(ms "$t0" "$t1")"
  [ "$(lxc-info -n "$n" -P "$P" -sH)" = STOPPED ] || { echo "lxc: $n not stopped" >&2; exit 1; }
  t0=$(now); lxc-destroy -n "$n" -P "$P" >/dev/null; t1=$(now); record lxc delete "$(ms "$t0" "$t1")"
}

crun_round() {
  local id=ctbench-crun-$1 t0 t1 b=$work/crun/ctbench-crun-$1
  t0=$(now)
  mkdir -p "$b/upper" "$b/work" "$b/merged"
  mount -t overlay overlay -o "lowerdir=$base,upperdir=$b/upper,workdir=$b/work" "$b/merged"
  sed -e 's/"terminal": *true/"terminal": false/' -e "s|\"path\": *\"rootfs\"|\"path\": \"$b/merged\"|" "$work/base/config.json" >"$b/config.json"
  t1=$(now); record crun create "$(ms "$t0" "$t1")"
  t0=$(now); crun create --bundle "$b" "$id"; crun start "$id"; t1=$(now); record crun start "$(ms "$t0" "$t1")"
  crun state "$id" | grep -q '"status": "running"' || { echo "crun: $id not running" >&2; exit 1; }
  t0=$(now); crun pause "$id"; t1=$(now); record crun freeze "$(ms "$t0" "$t1")"
  crun state "$id" | grep -q '"status": "paused"' || { echo "crun: $id not paused" >&2; exit 1; }
  t0=$(now); crun resume "$id"; t1=$(now); record crun unfreeze "$(ms "$t0" "$t1")"
  t0=$(now); crun kill "$id" KILL; until crun state "$id" | grep -q '"status": "stopped"'; do :; done; t1=$(now); record crun stop "$(ms "$t0" "$t1")"
  t0=$(now); crun delete "$id"; umount "$b/merged"; rm -rf "$b"; t1=$(now); record crun delete "$(ms "$t0" "$t1")"
}

if [ "${1:-}" = --crun-inside ]; then
  # Re-entered inside `unshare -m`: the v2 mount gone in this namespace only.
  trap - EXIT
  rmdir "$work"
  work=$2 base=$2/base/rootfs
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  for r in $(seq 1 "$ROUNDS"); do crun_round "$r"; done
  for k in "${!T[@]}"; do printf '%s %s\n' "$k" "$(printf '%s' "${T[$k]}" | median)"; done
  exit 0
fi

# The image, offline: busybox-static, entrypoint sleep; fetched into a layout, unpacked once.
mkdir -p "$work/rootfs/bin" "$work/lxc" "$work/crun"
cp /bin/busybox "$work/rootfs/bin/"
for t in sh sleep; do ln -s busybox "$work/rootfs/bin/$t"; done
umoci init --layout "$work/oci" && umoci new --image "$work/oci:img" && umoci insert --image "$work/oci:img" "$work/rootfs" / >/dev/null
umoci config --image "$work/oci:img" --config.entrypoint /bin/sleep --config.cmd 3600
umoci unpack --image "$work/oci:img" "$work/base" >/dev/null
base=$work/base/rootfs

for r in $(seq 1 "$ROUNDS"); do lxc_round "$r"; done
declare -A M
for k in "${!T[@]}"; do M[$k]=$(printf '%s' "${T[$k]}" | median); done
while read -r k v; do M[$k]=$v; done < <(unshare -m --propagation private bash "$0" --crun-inside "$work")

lxd() { case $1 in create) echo 78;; start) echo 291;; freeze) echo 11;; unfreeze) echo 11;; stop) echo 726;; delete) echo 22;; esac; }
target() { case $1 in create) echo '≤ 100';; start) echo '≤ 150';; freeze) echo '≤ 10';; unfreeze) echo '—';; stop) echo '≤ 100';; delete) echo '≤ 50';; esac; }
table="| step (bare runtime, no agent) | LXC $(lxc-start --version) | crun $(crun --version | head -1 | awk '{print $3}') | LXD 5.0 (issue 23) | issue 23 target (through the agent) |
| --- | --- | --- | --- | --- |"
for s in create start freeze unfreeze stop delete; do
  table+=$'\n'"| $s | ${M[lxc/$s]} ms | ${M[crun/$s]} ms | $(lxd $s) ms | $(target $s)$([ "$s" = unfreeze ] || echo ' ms') |"
done
body="## Container runtimes, bare (bench/container-runtimes.sh)

- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); $(uname -sr); load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared with other helpers' tests)
- medians of $ROUNDS rounds, wall time of the commands (each a process: lxc-* and crun as a library would skip the fork/exec); busybox-static image unpacked once by umoci, each container's root an overlayfs over it

$table"
echo "$body"
if [ "${1:-}" = --write ]; then
  file=$here/RESULTS.md begin='<!-- container-runtimes:start -->' end='<!-- container-runtimes:end -->'
  node -e '
    const fs = require("fs"); const [file, begin, end, body] = process.argv.slice(1);
    const text = fs.readFileSync(file, "utf8"); const section = `${begin}\n${body}\n${end}`;
    const a = text.indexOf(begin), b = text.indexOf(end);
    fs.writeFileSync(file, a >= 0 && b > a ? text.slice(0, a) + section + text.slice(b + end.length) : text.replace(/\n*$/, "\n\n") + section + "\n");
  ' "$file" "$begin" "$end" "$body"
fi
