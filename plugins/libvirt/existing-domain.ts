/**
 * Reads an existing libvirt domain into the Guest fields it corresponds to,
 * for adoption: vCPUs, memory, disks and NICs (with their MACs and current
 * host devices). Only reads; nothing in libvirt changes.
 */
import { StageRejection, type Disk, type Nic } from '../../core/contract/index.js';
import { VirshError, type VirshShell } from './virsh-shell.js';

export interface ExistingDomain {
  uuid: string;
  /** Undefined when libvirt did not say. */
  cpu?: number;
  /** MiB; undefined when libvirt did not say. */
  memory?: number;
  disks: Disk[];
  nics: Nic[];
}

export async function readExistingDomain(virsh: VirshShell, domain: string): Promise<ExistingDomain> {
  let info: string;
  try {
    info = await virsh.run(['dominfo', domain], { readOnly: true });
  } catch (error) {
    if (error instanceof VirshError) throw new StageRejection(404, `cannot adopt libvirt domain "${domain}": ${error.detail}`);
    throw error;
  }
  const field = (label: string) => new RegExp(`^${label}:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
  const cpu = Number(field('CPU\\(s\\)')) || undefined;
  const memory = Math.round(Number(field('Max memory').replace(/\s*KiB$/, '')) / 1024) || undefined;

  // "TYPE DEVICE TARGET SOURCE" per line; cdroms and floppies are not disks.
  const disks: Disk[] = [];
  for (const line of (await virsh.run(['domblklist', domain, '--details'], { readOnly: true })).split('\n')) {
    const [, device, target, ...source] = line.trim().split(/\s+/);
    if (device !== 'disk' || !target) continue;
    // The guest's device name tells its bus; sd could be sata too, libvirt's listing does not say.
    const bus = target.startsWith('hd') ? 'ide' : target.startsWith('sd') ? 'scsi' : 'virtio';
    const path = source.join(' ');
    disks.push({ bus, device: target, size: 0, volume: '', image: '', source: path === '-' ? '' : path });
  }

  const nics: Nic[] = (await readInterfaces(virsh, domain)).map(({ device, source, model, mac }, index) => ({
    name: `net${index}`,
    network: source,
    model,
    mac,
    address: '',
    netmask: '',
    gateway: '',
    device,
    vlans: [],
  }));
  return { uuid: field('UUID'), cpu, memory, disks, nics };
}

/** One line of `virsh domiflist`, "" where virsh prints "-"; the MAC in lower case. */
export interface DomainInterface {
  device: string;
  source: string;
  model: string;
  mac: string;
}

/** The domain's interfaces as `virsh domiflist` lists them ("INTERFACE TYPE SOURCE MODEL MAC" per line). */
export async function readInterfaces(virsh: VirshShell, domain: string): Promise<DomainInterface[]> {
  const out: DomainInterface[] = [];
  for (const line of (await virsh.run(['domiflist', domain], { readOnly: true })).split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 5) continue;
    const [device, , source, model, mac] = parts.map((p) => (p === '-' ? '' : p));
    out.push({ device, source, model, mac: mac.toLowerCase() });
  }
  return out;
}
