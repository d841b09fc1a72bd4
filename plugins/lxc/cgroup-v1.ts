/**
 * Where a container's cgroup v1 files are, and what its config needs so that
 * its block I/O is counted. This host runs cgroups v1 (v2 mounted beside
 * them at /sys/fs/cgroup/unified, with no controllers); LXC makes each
 * container a cgroup of the same relative path in every v1 hierarchy
 * (`lxc.payload.NAME` at their roots when root starts it).
 */
import { readFileSync, statSync } from 'node:fs';

/** The v1 controllers the metrics read. */
export type CgroupController = 'cpuacct' | 'blkio' | 'memory';

let mounts: ReadonlyMap<string, string> | undefined;

/**
 * Mount point of each v1 controller, from /proc/self/mountinfo (read once:
 * hierarchies are mounted at boot). Co-mounted controllers (cpu,cpuacct)
 * share one mount point.
 */
export function cgroupV1Mounts(): ReadonlyMap<string, string> {
  if (mounts) return mounts;
  const found = new Map<string, string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS"
    const [left, right] = line.split(' - ');
    const [fsType, , superOptions] = right?.split(' ') ?? [];
    if (fsType !== 'cgroup') continue;
    const mountPoint = unescapeMountPath(left.split(' ')[4]);
    for (const option of superOptions.split(',')) if (!found.has(option)) found.set(option, mountPoint);
  }
  mounts = found;
  return found;
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The folder of cgroup `relative` (e.g. `lxc.payload.web`) in the hierarchy of `controller`; throws when this host has no such v1 hierarchy. */
export function cgroupDir(controller: CgroupController, relative: string): string {
  const mount = cgroupV1Mounts().get(controller);
  if (!mount) throw new Error(`this host has no cgroup v1 "${controller}" hierarchy (see /proc/self/mountinfo); container ${controller} metrics need one`);
  return `${mount}/${relative}`;
}

/** A container's cgroup's relative path as LXC 5 names it when root starts the container (no lxc.cgroup.dir set). */
export function lxcPayloadCgroup(containerName: string): string {
  return `lxc.payload.${containerName}`;
}

/**
 * A throttle rate no disk reaches (4 EiB/s): set for a container's cgroup on
 * the disk under its root, it delays nothing, but Linux (6.x) counts a v1
 * blkio cgroup's I/O (blkio.throttle.io_service*) only on disks where some
 * throttle rule is set; without one the container's counters stay 0.
 */
const UNREACHED_BPS = 2n ** 62n;

/**
 * The LXC config lines that make the block I/O of a container whose files
 * live under `dir` (its rootfs overlay's upper layer, which is where its
 * writes go) countable: a throttle rule of {@link UNREACHED_BPS} on the
 * whole disk holding `dir`. None when `dir` is on no block device (tmpfs,
 * the overlay of a test): there is no I/O to count there.
 */
export function blkioAccountingLines(dir: string): string[] {
  const disk = wholeDiskOf(statSync(dir).dev);
  if (!disk) return [];
  return [`lxc.cgroup.blkio.throttle.read_bps_device = ${disk} ${UNREACHED_BPS}`, `lxc.cgroup.blkio.throttle.write_bps_device = ${disk} ${UNREACHED_BPS}`];
}

/** "MAJ:MIN" of the whole disk a device number belongs to (throttle rules name disks, not partitions); undefined for no block device. */
function wholeDiskOf(dev: number): string | undefined {
  // Linux's encoding of dev_t (new_encode_dev), as stat gives it.
  const major = ((dev >>> 8) & 0xfff) | Math.floor(dev / 2 ** 32) & ~0xfff;
  const minor = (dev & 0xff) | ((dev >>> 12) & ~0xff);
  let uevent: string;
  try {
    uevent = readFileSync(`/sys/dev/block/${major}:${minor}/uevent`, 'utf8');
  } catch {
    return undefined; // tmpfs, overlayfs, proc: an anonymous device, no block device behind it.
  }
  if (/^DEVTYPE=disk$/m.test(uevent)) return `${major}:${minor}`;
  // A partition: its disk is the parent folder in sysfs, whose "dev" file is MAJ:MIN.
  try {
    return readFileSync(`/sys/dev/block/${major}:${minor}/../dev`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
