/**
 * The QEMU command line for a guest. Everything comes from the Guest record
 * and the plugin options, so a restarted agent rebuilds the same machine.
 */
import { nicModel, StageRejection, type Guest, type NicModel } from '../../core/contract/index.js';
import type { ResolvedQemuOptions } from './options.js';
import type { RunDir } from './run-dir.js';
import { checkLaunchable, diskIndex, isQ35 as isQ35Machine } from './launch-checks.js';

/** Guest metadata keys that boot a kernel from the images folder directly (no bootloader on disk). */
export const KERNEL_METADATA = { kernel: 'qemu.kernel', initrd: 'qemu.initrd', cmdline: 'qemu.cmdline' } as const;

/** QEMU's device for each NIC model of the backend kit. */
const NIC_DEVICES: Record<NicModel, string> = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  e1000e: 'e1000e',
  rtl8139: 'rtl8139',
  vmxnet3: 'vmxnet3',
};

export interface LaunchPlan {
  /** Absolute paths of the direct-boot files, when the guest names them. */
  kernel?: string;
  initrd?: string;
  /** NIC name -> tap device; NICs not listed use user-mode networking. */
  taps: Map<string, string>;
  vncPort: number;
  /** The VNC server's unix socket instead of a port (option vncSocket). */
  vncSocket?: string;
}

/** The QEMU drive id of a guest disk device (vda -> drive-vda), for -drive and for QMP. */
export function driveId(device: string): string {
  return `drive-${device}`;
}

/** QEMU separates sub-options with commas; a literal comma is written twice. */
function escape(value: string): string {
  return value.replaceAll(',', ',,');
}

function accelArgs(options: ResolvedQemuOptions): string[] {
  // Under auto, QEMU tries the accelerators in order and keeps the first that initialises.
  if (options.accel === 'auto') return ['-accel', 'kvm', '-accel', 'tcg'];
  return ['-accel', options.accel];
}

export function buildCommandLine(guest: Guest, runDir: RunDir, options: ResolvedQemuOptions, plan: LaunchPlan): string[] {
  // Guests stored before a check existed get the same 400 at start.
  checkLaunchable(guest, options.machine);
  const args: string[] = [
    // The name lets operators (and ps) tell guests apart; process= names the main thread.
    '-name', `${escape(guest.id)},process=hk-${guest.id.slice(0, 12)}`,
    '-machine', options.machine,
    ...accelArgs(options),
    '-m', String(guest.memory),
    '-smp', String(guest.cpu),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-daemonize',
    '-pidfile', runDir.pidFile,
    '-qmp', `unix:${escape(runDir.qmpSocket)},server=on,wait=off`,
    // Paused until the agent is connected to the console: a viewer sees the boot from its first byte.
    '-S',
    // ttyS0 on a socket the agent holds; QEMU itself logs every byte (also while nobody is connected).
    '-chardev', `socket,id=console,path=${escape(runDir.consoleSocket)},server=on,wait=off,logfile=${escape(runDir.consoleLog)},logappend=on`,
    '-serial', 'chardev:console',
    '-chardev', `socket,id=serial1,path=${escape(runDir.serialSocket)},server=on,wait=off`,
    '-serial', 'chardev:serial1',
    // Lets a guest kernel report a panic (GUEST_PANICKED), so a crash is not mistaken for a power-off.
    '-device', 'pvpanic',
  ];
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(guest.id)) args.push('-uuid', guest.id);
  const cpuModel = options.cpuModel || (options.accel === 'kvm' ? 'host' : '');
  if (cpuModel) args.push('-cpu', cpuModel);

  const isQ35 = isQ35Machine(options.machine);
  let scsiController = false;
  let ahciController = false;
  guest.disks.forEach((disk, position) => {
    if (!disk.source) throw new Error(`disk ${disk.device} has no source file; was the guest created by this plugin?`);
    const drive = driveId(disk.device);
    args.push('-drive', `file=${escape(disk.source)},if=none,id=${drive},format=qcow2,discard=unmap`);
    const boot = position === 0 ? ',bootindex=1' : '';
    const index = diskIndex(disk.device);
    switch (disk.bus || 'virtio') {
      case 'virtio':
        args.push('-device', `virtio-blk-pci,drive=${drive},id=${disk.device}${boot}`);
        break;
      case 'scsi':
        if (!scsiController) args.push('-device', 'virtio-scsi-pci,id=scsi0');
        scsiController = true;
        args.push('-device', `scsi-hd,drive=${drive},bus=scsi0.0,scsi-id=${index},id=${disk.device}${boot}`);
        break;
      case 'sata':
      case 'ide':
        if (isQ35) {
          // q35's built-in AHCI controller exposes its six ports as ide.0 .. ide.5.
          if (index > 5) throw new StageRejection(400, `disk ${disk.device}: q35 has six SATA/IDE ports`);
          args.push('-device', `ide-hd,drive=${drive},bus=ide.${index},id=${disk.device}${boot}`);
        } else if (disk.bus === 'ide') {
          if (index > 3) throw new StageRejection(400, `disk ${disk.device}: the pc machine has four IDE slots`);
          args.push('-device', `ide-hd,drive=${drive},bus=ide.${index >> 1},unit=${index & 1},id=${disk.device}${boot}`);
        } else {
          if (!ahciController) args.push('-device', 'ahci,id=ahci0');
          ahciController = true;
          args.push('-device', `ide-hd,drive=${drive},bus=ahci0.${index},id=${disk.device}${boot}`);
        }
        break;
      default:
        throw new StageRejection(400, `disk ${disk.device}: unknown bus "${disk.bus}" (ide, scsi, sata or virtio)`);
    }
  });

  for (const nic of guest.nics) {
    // Model, MAC and name all end up inside QEMU's option syntax (checkLaunchable checked them).
    const model = NIC_DEVICES[nicModel(nic)];
    const tap = plan.taps.get(nic.name);
    const netdev = `netdev-${nic.name}`;
    if (tap) args.push('-netdev', `tap,id=${netdev},ifname=${tap},script=no,downscript=no`);
    else args.push('-netdev', `user,id=${netdev}`);
    args.push('-device', `${model},netdev=${netdev},mac=${nic.mac},id=${nic.name}`);
  }

  if (plan.kernel) {
    args.push('-kernel', plan.kernel);
    if (plan.initrd) args.push('-initrd', plan.initrd);
    const cmdline = guest.metadata?.[KERNEL_METADATA.cmdline];
    if (cmdline) args.push('-append', cmdline);
  }
  // VNC needs a display adapter; -nodefaults removed the default one.
  if (plan.vncSocket) {
    args.push('-device', 'VGA', '-vnc', `unix:${escape(plan.vncSocket)}`);
  } else if (plan.vncPort > 0) {
    args.push('-device', 'VGA', '-vnc', `${options.vncListen.includes(':') ? `[${options.vncListen}]` : options.vncListen}:${plan.vncPort - 5900}`);
  }
  if (options.sandbox) args.push('-sandbox', 'on,obsolete=deny,resourcecontrol=deny');
  if (options.runAs) args.push('-runas', options.runAs);
  args.push(...options.extraArgs);
  return args;
}
