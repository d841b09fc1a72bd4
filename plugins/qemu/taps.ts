/**
 * Host tap devices for guest NICs. A NIC gets a persistent tap enslaved to
 * the Linux bridge named by its `network` when that bridge exists; QEMU then
 * opens the tap by name. Persistent taps are created by the agent (root) so
 * QEMU needs no helper or setuid bridge script, and they stay across QEMU
 * restarts until the guest is deleted.
 */
import { isInterfaceName, MAX_INTERFACE_NAME } from '../../core/contract/index.js';
import { pathExists as exists } from './path-exists.js';
import { CounterFile } from './counter-file.js';
import { run } from './exec.js';

const SYS_NET = '/sys/class/net';

export function isBridge(name: string): Promise<boolean> {
  // A name that cannot be an interface is no bridge (and must not reach the /sys path).
  if (!isInterfaceName(name)) return Promise.resolve(false);
  return exists(`${SYS_NET}/${name}/bridge`);
}

export function interfaceExists(name: string): Promise<boolean> {
  return exists(`${SYS_NET}/${name}`);
}

function checkName(tap: string): void {
  if (!isInterfaceName(tap)) {
    throw new Error(`tap name "${tap}" is not a valid interface name (letters, digits, _.-, at most ${MAX_INTERFACE_NAME})`);
  }
}

/** Creates the tap if missing (e.g. after a host reboot) and plugs it into the bridge. */
export async function ensureTap(tap: string, bridge: string, signal?: AbortSignal): Promise<void> {
  checkName(tap);
  if (!(await isBridge(bridge))) {
    throw new Error(`bridge "${bridge}" for tap ${tap} does not exist; create it (see docs/qemu.md) or recreate the guest`);
  }
  if (!(await interfaceExists(tap))) {
    await run('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap', 'vnet_hdr'], { signal });
  }
  await run('ip', ['link', 'set', 'dev', tap, 'master', bridge], { signal });
  await run('ip', ['link', 'set', 'dev', tap, 'up'], { signal });
}

export async function removeTap(tap: string, signal?: AbortSignal): Promise<void> {
  checkName(tap);
  dropTapFiles(tap);
  if (await interfaceExists(tap)) await run('ip', ['link', 'del', 'dev', tap], { signal });
}

export interface TapCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

const COUNTERS: (keyof TapCounters)[] = ['rx_bytes', 'rx_packets', 'rx_errors', 'rx_dropped', 'tx_bytes', 'tx_packets', 'tx_errors', 'tx_dropped'];

/**
 * The counter files of each tap read so far, kept open (counter-file.ts): a
 * pread each instead of eight path walks, opens and closes per request
 * (40 µs a NIC). Dropped when the agent removes the tap, or when a read
 * finds the tap gone.
 */
const tapFiles = new Map<string, CounterFile[]>();

function openTapFiles(tap: string): CounterFile[] {
  const files: CounterFile[] = [];
  try {
    for (const counter of COUNTERS) files.push(new CounterFile(`${SYS_NET}/${tap}/statistics/${counter}`));
  } catch (error) {
    for (const file of files) file.close();
    throw error;
  }
  return files;
}

function dropTapFiles(tap: string): void {
  const files = tapFiles.get(tap);
  if (!files) return;
  tapFiles.delete(tap);
  for (const file of files) file.close();
}

/** The tap's own counters (host side); undefined when the tap is gone. */
export async function readTapCounters(tap: string): Promise<TapCounters | undefined> {
  checkName(tap);
  for (let attempt = 0; ; attempt++) {
    try {
      let files = tapFiles.get(tap);
      if (!files) tapFiles.set(tap, (files = openTapFiles(tap)));
      const counters = {} as TapCounters;
      for (const [i, counter] of COUNTERS.entries()) counters[counter] = Number(files[i].read().trim());
      return counters;
    } catch (error) {
      dropTapFiles(tap);
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      // ENODEV (EINVAL while it unregisters): the tap these files were
      // opened on is deleted; one of the same name may exist now.
      if (code === 'ENODEV' || code === 'EINVAL') {
        if (attempt === 0) continue;
        return undefined;
      }
      throw error;
    }
  }
}
