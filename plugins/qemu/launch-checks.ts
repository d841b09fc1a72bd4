/**
 * What QEMU's command line would refuse about a guest's NICs and disks,
 * checked on the Guest record alone (no host access), so a create answers
 * 400 naming the field instead of making a guest its own start refuses.
 * The create's sync stage (`qemu.checkCreate`), the async create (for
 * configs without that stage) and the command line builder all run these.
 */
import { checkMac, nicModel, StageRejection, type Guest } from '../../core/contract/index.js';

/** QEMU's own rule for ids (util/id.c): a letter, then letters, digits, - . _ */
const QEMU_ID = /^[A-Za-z][A-Za-z0-9._-]*$/;
const DISK_BUSES = ['virtio', 'scsi', 'sata', 'ide'];

/** Position of a disk device on its bus: vda -> 0, sdb -> 1, hdc -> 2. */
export function diskIndex(device: string): number {
  const letters = device.slice(2);
  let index = 0;
  for (const ch of letters) index = index * 26 + (ch.charCodeAt(0) - 96);
  return index - 1;
}

export function isQ35(machine: string): boolean {
  return machine.startsWith('q35') || machine.includes('-q35');
}

/** Runs a backend-kit check, its 400 prefixed with the request field it is about. */
function field(where: string, check: () => unknown): void {
  try {
    check();
  } catch (error) {
    if (StageRejection.is(error)) throw new StageRejection(error.status, `${where}: ${error.message}`);
    throw error;
  }
}

/** Throws a 400 naming the first NIC or disk field QEMU would refuse. */
export function checkLaunchable(guest: Guest, machine: string): void {
  guest.nics.forEach((nic, i) => {
    // The name becomes the NIC's QEMU device id (and part of its netdev id).
    if (!QEMU_ID.test(nic.name)) {
      throw new StageRejection(400, `nics.${i}.name: "${nic.name}" is not a name QEMU takes: a letter first, then letters, digits, _ . and -`);
    }
    field(`nics.${i}.model`, () => nicModel(nic));
    field(`nics.${i}.mac`, () => checkMac(nic));
  });
  const q35 = isQ35(machine);
  guest.disks.forEach((disk, i) => {
    const bus = disk.bus || 'virtio';
    if (!DISK_BUSES.includes(bus)) throw new StageRejection(400, `disks.${i}.bus: unknown bus "${disk.bus}" (ide, scsi, sata or virtio)`);
    const index = diskIndex(disk.device);
    if ((bus === 'sata' || bus === 'ide') && q35 && index > 5) {
      throw new StageRejection(400, `disks.${i}: disk ${disk.device}: the q35 machine has six SATA/IDE ports`);
    }
    if (bus === 'ide' && !q35 && index > 3) throw new StageRejection(400, `disks.${i}: disk ${disk.device}: the pc machine has four IDE slots`);
  });
}
