/**
 * Guest disks as qcow2 volumes in a libvirt storage pool: blank ones of the
 * requested size, or copy-on-write overlays of a base image that is itself
 * a volume of the pool (the base stays untouched and can back many guests).
 * Going through the pool rather than writing files keeps libvirt's view of
 * the host's storage true, and works on remote and test connections alike.
 */
import { diskImage, invalidImageName, StageRejection, type Disk, type Guest } from '../../core/contract/index.js';
import { splitVolume } from './domain-xml.js';
import { VirshError, type VirshShell } from './virsh-shell.js';

const MIB = 1024 * 1024;

/** The volume name of a guest's disk: the domain name and the guest device. */
export function volumeName(domainName: string, device: string): string {
  return `${domainName}-${device}.qcow2`;
}

interface VolumeInfo {
  capacityBytes: number;
  format: string;
}

/** A volume's capacity and format, or undefined when the pool has no such volume. */
export async function volumeInfo(virsh: VirshShell, pool: string, name: string): Promise<VolumeInfo | undefined> {
  let xml: string;
  try {
    xml = await virsh.run(['vol-dumpxml', '--pool', pool, name], { readOnly: true });
  } catch (error) {
    if (error instanceof VirshError && /Storage volume not found|no storage vol/i.test(error.detail)) return undefined;
    throw error;
  }
  const capacity = /<capacity unit='bytes'>(\d+)<\/capacity>/.exec(xml);
  const format = /<format type='([^']+)'\/>/.exec(xml);
  return { capacityBytes: capacity ? Number(capacity[1]) : 0, format: format?.[1] ?? 'raw' };
}

/** Checks the pool exists and is active, with a message that says how to make one. */
export async function checkPool(virsh: VirshShell, pool: string): Promise<void> {
  let info: string;
  try {
    info = await virsh.run(['pool-info', pool], { readOnly: true });
  } catch (error) {
    if (error instanceof VirshError && /not found|no storage pool/i.test(error.detail)) {
      throw new Error(
        `libvirt storage pool "${pool}" does not exist; create it (virsh pool-define-as ${pool} dir --target /var/lib/libvirt/images && virsh pool-start ${pool} && virsh pool-autostart ${pool}) or set the libvirt plugin's storagePool option`,
      );
    }
    throw error;
  }
  if (!/^State:\s+running/m.test(info)) throw new Error(`libvirt storage pool "${pool}" is not active; start it with: virsh pool-start ${pool}`);
}

/**
 * What a disk's `image` may name: a volume of the pool by its plain name
 * (never a path, which virsh would also accept, and never something that
 * starts with "-", which virsh would read as an option), and never another
 * guest's disk: a guest built on a live disk of another would read its
 * data. `guestVolumes` holds every guest's disk volume names and paths; a
 * name in hyperkern's own volume pattern is refused even when no guest
 * holds it now (another agent's guest, or one being created).
 */
export function checkImageName(imageName: string, guestVolumes: ReadonlySet<string>, domainPrefix: string): void {
  // The backend kit's file-name rule, and no backslash or space, which virsh would read otherwise.
  if (invalidImageName(imageName) || /[\\\s]/.test(imageName)) {
    throw new StageRejection(400, `image "${imageName}" must be the plain name of a volume in the images pool (no path, no "..", no leading "-" or ".")`);
  }
  const ownPattern = new RegExp(`^${domainPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[0-9a-f-]{36}-[a-z]+\\.qcow2$`, 'i');
  if (guestVolumes.has(imageName) || ownPattern.test(imageName)) {
    throw new StageRejection(400, `image "${imageName}" is a guest's disk, not an image; name an image volume of the pool`);
  }
}

/** Every guest's disk volumes, by name and by path, for checkImageName. */
export function volumesOf(guests: Guest[]): Set<string> {
  const out = new Set<string>();
  for (const guest of guests) {
    for (const disk of guest.disks) {
      if (disk.volume) out.add(splitVolume(disk.volume).name);
      if (disk.source) out.add(disk.source);
    }
  }
  return out;
}

/**
 * Creates every disk's volume and returns the disks with `volume`
 * ("pool/name"), `source` (the volume's path) and `size` filled in. On
 * failure the volumes made so far are deleted again.
 */
export async function createVolumes(
  virsh: VirshShell,
  guest: Guest,
  domainName: string,
  pool: string,
  images: { guestVolumes: ReadonlySet<string>; domainPrefix: string },
): Promise<Disk[]> {
  const disks: Disk[] = [];
  try {
    for (const [index, disk] of guest.disks.entries()) {
      if (disk.source) {
        // Attaching arbitrary host files through the API would expose the host.
        throw new StageRejection(400, `disk ${disk.device}: source is assigned by the agent; name an image (a volume of pool "${pool}") or give a size instead`);
      }
      const name = volumeName(domainName, disk.device);
      if (await volumeInfo(virsh, pool, name)) throw new Error(`volume ${name} already exists in pool ${pool}; refusing to overwrite it`);
      const imageName = diskImage(guest, index);
      let sizeMiB = disk.size ?? 0;
      const args = ['vol-create-as', pool, name];
      if (imageName) {
        checkImageName(imageName, images.guestVolumes, images.domainPrefix);
        const base = await volumeInfo(virsh, pool, imageName);
        if (!base) throw new StageRejection(400, `image "${imageName}" is not a volume of storage pool "${pool}" (virsh vol-list ${pool})`);
        const baseMiB = Math.ceil(base.capacityBytes / MIB);
        // An overlay can grow its base (the guest resizes its filesystem) but never shrink it.
        if (sizeMiB < baseMiB) sizeMiB = baseMiB;
        args.push(`${sizeMiB}M`, '--format', 'qcow2', '--backing-vol', imageName, '--backing-vol-format', base.format);
      } else {
        if (!(sizeMiB > 0)) throw new StageRejection(400, `disk ${disk.device} needs a size in MiB or an image`);
        args.push(`${sizeMiB}M`, '--format', 'qcow2');
      }
      await virsh.run(args);
      const source = (await virsh.run(['vol-path', '--pool', pool, name], { readOnly: true })).trim();
      disks.push({ ...disk, image: imageName, size: sizeMiB, volume: `${pool}/${name}`, source });
    }
    return disks;
  } catch (error) {
    await deleteVolumes(virsh, disks).catch(() => undefined);
    throw error;
  }
}

/** Deletes the disks' volumes; volumes already gone are fine. */
export async function deleteVolumes(virsh: VirshShell, disks: Disk[]): Promise<void> {
  for (const disk of disks) {
    if (!disk.volume) continue;
    const { pool, name } = splitVolume(disk.volume);
    try {
      await virsh.run(['vol-delete', '--pool', pool, name]);
    } catch (error) {
      if (error instanceof VirshError && /Storage volume not found|no storage vol/i.test(error.detail)) continue;
      throw error;
    }
  }
}
