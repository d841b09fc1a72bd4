/**
 * Host tap devices for guest NICs. A NIC gets a persistent tap enslaved to
 * the Linux bridge named by its `network` when that bridge exists; QEMU then
 * opens the tap by name. Persistent taps are created by the agent (root) so
 * QEMU needs no helper or setuid bridge script, and they stay across QEMU
 * restarts until the guest is deleted.
 */
import { forgetInterfaceCounters, isInterfaceName, MAX_INTERFACE_NAME, readInterfaceCounters, type InterfaceCounters } from '../../core/contract/index.js';
import { pathExists as exists } from './path-exists.js';
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
  forgetInterfaceCounters(tap);
  if (await interfaceExists(tap)) await run('ip', ['link', 'del', 'dev', tap], { signal });
}

/** The tap's own counters (host side); undefined when the tap is gone. */
export function readTapCounters(tap: string): InterfaceCounters | undefined {
  checkName(tap);
  return readInterfaceCounters(tap);
}
