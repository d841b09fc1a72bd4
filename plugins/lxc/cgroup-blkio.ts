/**
 * What a container's config needs so that its block I/O is counted, and
 * how the counts read. Linux (6.x) counts a cgroup v1 blkio cgroup's I/O
 * (blkio.throttle.io_service_bytes and io_serviced) only on a disk where
 * some throttle rule is set: without one a container's counters stay 0
 * however much it reads and writes.
 */
import { readFileSync, statSync } from 'node:fs';

/** A throttle rate no disk reaches (4 EiB/s): as a rule it delays nothing, but makes the disk count. */
const UNREACHED_BPS = 2n ** 62n;

/**
 * The LXC config lines that make a container's block I/O countable: a
 * throttle rule of {@link UNREACHED_BPS}, read and write, on each whole
 * disk holding one of `dirs` (its writable layer, where its writes go, and
 * its image's base, where its reads of unchanged files go). A folder on no
 * block device (tmpfs) needs none: no I/O of it reaches a disk.
 */
export function blkioAccountingLines(dirs: readonly string[]): string[] {
  const disks = new Set<string>();
  for (const dir of dirs) {
    const disk = wholeDiskOf(statSync(dir).dev);
    if (disk) disks.add(disk);
  }
  return [...disks].flatMap((disk) => [`lxc.cgroup.blkio.throttle.read_bps_device = ${disk} ${UNREACHED_BPS}`, `lxc.cgroup.blkio.throttle.write_bps_device = ${disk} ${UNREACHED_BPS}`]);
}

/** "MAJ:MIN" of the whole disk a device number belongs to (throttle rules name disks, not partitions); undefined for no block device. */
function wholeDiskOf(dev: number): string | undefined {
  // Linux's encoding of dev_t (new_encode_dev), as stat gives it.
  const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
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

/** Sums the Read and Write lines of a blkio.throttle.* file ("MAJ:MIN Read N" per disk, then "Total N"). */
export function parseBlkioReadWrite(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [device, op, value] = line.split(' ');
    if (!device?.includes(':')) continue;
    if (op === 'Read') read += Number(value);
    else if (op === 'Write') write += Number(value);
  }
  return { read, write };
}
