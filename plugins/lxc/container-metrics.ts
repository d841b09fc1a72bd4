/**
 * Container guests' metrics, read in the agent's process from the kernel's
 * own counters, never by a process per request (LXD forks one per state
 * call: 11 requests/s here): CPU time from the container's cgroup
 * (cpuacct.usage), block I/O from its blkio cgroup, NIC counters from the
 * host ends of its veth pairs in /sys. Each file is opened once and re-read
 * with a pread (backend-kit/counter-file.ts), about a microsecond.
 *
 * A cgroup's files stay bound to the cgroup they were opened on: when the
 * container stops, LXC removes its cgroup and a read fails with ENODEV; the
 * files are then closed and the path opened anew (the container may run
 * again, in a new cgroup of the same name), and a path that is not there
 * means the container does not run: a 409, as for a VM with no QEMU.
 * These read only; they never wait for a lifecycle job.
 */
import { CounterFile, readInterfaceCounters, StageRejection, type Guest, type GuestCpuMetrics, type GuestDiskMetrics, type GuestNicMetrics } from '../../core/contract/index.js';
import { parseBlkioReadWrite } from './cgroup-blkio.js';

/** The cgroup v1 controllers read. */
export type CgroupController = 'cpuacct' | 'blkio';

/** A guest's NIC as the metrics read it: its name and the host end of its veth pair. */
export interface NicDevice {
  nic: { name: string };
  hostDevice: string;
}

/** The one disk entry of a container: its root (an overlay) and whatever else it reads and writes, as its cgroup counts it. */
export const CONTAINER_DISK = 'rootfs';

/** An entry for a NIC with nothing to count: no numbers, so no claim of no traffic (as the QEMU backend answers for a tap gone). */
export interface UnavailableNicMetrics {
  name: string;
  counters: string;
}

/** The cgroup files read, by controller. */
const FILES = {
  cpu: ['cpuacct', 'cpuacct.usage'],
  bytes: ['blkio', 'blkio.throttle.io_service_bytes_recursive'],
  ios: ['blkio', 'blkio.throttle.io_serviced_recursive'],
} as const satisfies Record<string, readonly [CgroupController, string]>;
type FileKey = keyof typeof FILES;

/** Why a cgroup file could not be read: the container does not run (no cgroup), or its cgroup went away while open. */
class NotRunning extends Error {}

/** The kept-open cgroup files of one container. */
class CgroupFiles {
  private readonly files = new Map<FileKey, CounterFile>();

  /** `dirOf`: the container's cgroup folder in a controller's hierarchy. */
  constructor(private readonly dirOf: (controller: CgroupController) => string) {}

  /** The file's text now; reopened once when the cgroup it was opened on is gone; NotRunning when there is no such cgroup. */
  read(key: FileKey): string {
    for (let attempt = 0; ; attempt++) {
      try {
        let file = this.files.get(key);
        if (!file) {
          const [controller, name] = FILES[key];
          this.files.set(key, (file = new CounterFile(`${this.dirOf(controller)}/${name}`)));
        }
        return file.read();
      } catch (error) {
        this.drop(key);
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') throw new NotRunning();
        // ENODEV: the cgroup was removed (the container stopped); one of the same name may exist now.
        if (code === 'ENODEV' && attempt === 0) continue;
        if (code === 'ENODEV') throw new NotRunning();
        throw error;
      }
    }
  }

  private drop(key: FileKey): void {
    this.files.get(key)?.close();
    this.files.delete(key);
  }

  close(): void {
    for (const key of [...this.files.keys()]) this.drop(key);
  }
}

/**
 * Every container's kept-open files, by guest id. `cgroupOf` names a
 * guest's cgroup folder in a controller's hierarchy (asked once per guest:
 * a container keeps its cgroup's name across runs); `nicsOf` its NICs'
 * host devices.
 */
export class ContainerMetrics {
  private readonly open = new Map<string, CgroupFiles>();

  constructor(
    private readonly cgroupOf: (guestId: string, controller: CgroupController) => string,
    private readonly nicsOf: (guest: Guest) => readonly NicDevice[],
  ) {}

  private filesOf(guest: Guest): CgroupFiles {
    let files = this.open.get(guest.id);
    if (!files) this.open.set(guest.id, (files = new CgroupFiles((controller) => this.cgroupOf(guest.id, controller))));
    return files;
  }

  private read<T>(guest: Guest, type: string, reader: (files: CgroupFiles) => T): T {
    try {
      return reader(this.filesOf(guest));
    } catch (error) {
      if (error instanceof NotRunning) throw new StageRejection(409, `container guest ${guest.id} is not running (state "${guest.state}"); ${type} metrics need a running container`);
      throw error;
    }
  }

  /**
   * One entry (mistify's shape is one per vCPU; a container has no vCPUs):
   * the CPU time of every process the container ran, user and system, in
   * seconds. All of it is the guest's own work, so `vcpu_time` is the same.
   */
  cpu(guest: Guest): GuestCpuMetrics[] {
    const seconds = this.read(guest, 'cpu', (files) => Number(files.read('cpu').trim()) / 1e9);
    return [{ cpu_time: seconds, vcpu_time: seconds }];
  }

  /**
   * One entry, {@link CONTAINER_DISK}: bytes and requests its processes
   * submitted to block devices (reads, direct and synced writes; pages the
   * kernel writes back later in the background are charged to the host in
   * cgroup v1). The kernel keeps no times for a v1 cgroup: read_time,
   * write_time and flush_* are 0.
   */
  disk(guest: Guest): Record<string, GuestDiskMetrics> {
    return this.read(guest, 'disk', (files) => {
      const bytes = parseBlkioReadWrite(files.read('bytes'));
      const ios = parseBlkioReadWrite(files.read('ios'));
      return {
        [CONTAINER_DISK]: { disk: CONTAINER_DISK, read_ops: ios.read, read_bytes: bytes.read, read_time: 0, write_ops: ios.write, write_bytes: bytes.write, write_time: 0, flush_ops: 0, flush_time: 0 },
      };
    });
  }

  /**
   * Each NIC's counters as the guest sees them: the host end of a veth pair
   * receives what the container sends, so its rx is the guest's tx.
   */
  nic(guest: Guest): Record<string, GuestNicMetrics | UnavailableNicMetrics> {
    // A container that does not run has no veth pairs: a 409 as for cpu and disk, not "unavailable" entries.
    this.read(guest, 'nic', (files) => files.read('cpu'));
    const result: Record<string, GuestNicMetrics | UnavailableNicMetrics> = {};
    for (const { nic, hostDevice } of this.nicsOf(guest)) {
      const host = readInterfaceCounters(hostDevice);
      if (!host) {
        result[nic.name] = { name: nic.name, counters: `unavailable: veth ${hostDevice} does not exist (the container is not running)` };
        continue;
      }
      result[nic.name] = {
        name: nic.name,
        rx_bytes: host.tx_bytes,
        rx_packets: host.tx_packets,
        rx_errors: host.tx_errors,
        rx_drops: host.tx_dropped,
        tx_bytes: host.rx_bytes,
        tx_packets: host.rx_packets,
        tx_errors: host.rx_errors,
        tx_drops: host.rx_dropped,
      };
    }
    return result;
  }

  /** Closes a guest's files (it was deleted; a stopped one's are closed at the next read that finds its cgroup gone). */
  forget(guestId: string): void {
    this.open.get(guestId)?.close();
    this.open.delete(guestId);
  }

  /** Closes every file (the plugin stops). */
  close(): void {
    for (const id of [...this.open.keys()]) this.forget(id);
  }
}
