/**
 * How each of a guest's NICs attaches, resolved against the host at create:
 * a libvirt network when one has that name, else a bridge on this host, else
 * (empty network) QEMU user-mode networking.
 */
import { existsSync } from 'node:fs';
import { StageRejection, type Guest } from '../../core/contract/index.js';
import type { NicAttachment } from './domain-xml.js';
import type { VirshShell } from './virsh-shell.js';

/**
 * `anyBridge`: accept any name as a bridge without looking at /sys (the test
 * driver, whose domains attach to nothing real).
 */
export async function planNics(virsh: VirshShell, guest: Guest, anyBridge: boolean): Promise<Map<string, NicAttachment>> {
  const plan = new Map<string, NicAttachment>();
  if (guest.nics.length === 0) return plan;
  const networks = new Set((await virsh.run(['net-list', '--all', '--name'], { readOnly: true })).split('\n').map((l) => l.trim()).filter(Boolean));
  for (const nic of guest.nics) {
    // The name ends up in a /sys path and in virsh arguments: a Linux interface name or a libvirt network name only.
    if (nic.network && !/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/.test(nic.network)) {
      throw new StageRejection(400, `nic ${nic.name}: network "${nic.network}" is not a bridge or libvirt network name (letters, digits, _ . : -, not starting with "-" or ".")`);
    }
    if (!nic.network) plan.set(nic.name, { kind: 'user' });
    else if (networks.has(nic.network)) plan.set(nic.name, { kind: 'network', network: nic.network });
    else if (anyBridge || existsSync(`/sys/class/net/${nic.network}/bridge`)) plan.set(nic.name, { kind: 'bridge', bridge: nic.network });
    else {
      throw new StageRejection(
        400,
        `nic ${nic.name}: "${nic.network}" is neither a libvirt network (${[...networks].join(', ') || 'none defined'}) nor a bridge on this host; leave network empty for user-mode networking`,
      );
    }
  }
  return plan;
}
