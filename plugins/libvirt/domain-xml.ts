/**
 * The libvirt domain XML for a guest. Everything comes from the Guest record
 * and a plan the plugin resolved against the host (which NIC goes to a
 * bridge or a libvirt network, where the disks' volumes are), so a restarted
 * agent would define the same machine again.
 */
import { checkMac, nicModel, StageRejection, type Guest } from '../../core/contract/index.js';

export type NicAttachment =
  /** A Linux (or Open vSwitch) bridge on the host. */
  | { kind: 'bridge'; bridge: string }
  /** A libvirt virtual network (virsh net-list). */
  | { kind: 'network'; network: string }
  /** QEMU user-mode networking: NAT, no host device, no counters. */
  | { kind: 'user' };

export interface DomainPlan {
  name: string;
  uuid: string;
  type: 'kvm' | 'qemu' | 'test';
  /** QEMU machine type; empty lets libvirt choose. */
  machine: string;
  /** How each NIC (by name) is attached; disks' volumes are in each disk's `volume` ("pool/name"). */
  nics: Map<string, NicAttachment>;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** ttyS0's output is logged to this file (virtlogd or QEMU write it, attached or not). */
  consoleLog?: string;
  /** ttyS0 on a unix socket QEMU listens on, for the agent to type into (with consoleLog as its log). */
  consoleSocket?: string;
  /** ttyS1 is a unix socket here (a shell for tests, a console for operators). */
  serialSocket?: string;
  vncListen?: string;
}

export function escapeXml(value: string): string {
  return value.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** "pool/volume" as stored in a disk's `volume`. */
export function splitVolume(volume: string): { pool: string; name: string } {
  const slash = volume.indexOf('/');
  if (slash <= 0) throw new Error(`disk volume "${volume}" is not "pool/volume"`);
  return { pool: volume.slice(0, slash), name: volume.slice(slash + 1) };
}

export function buildDomainXml(guest: Guest, plan: DomainPlan): string {
  const x = escapeXml;
  const lines: string[] = [];
  lines.push(`<domain type='${plan.type}'>`);
  lines.push(`  <name>${x(plan.name)}</name>`);
  lines.push(`  <uuid>${x(plan.uuid)}</uuid>`);
  lines.push(`  <title>hyperkern guest ${x(guest.id)}</title>`);
  lines.push(`  <description>Defined by hyperkern; change it through the hyperkern API.</description>`);
  lines.push(`  <memory unit='MiB'>${guest.memory}</memory>`);
  lines.push(`  <vcpu placement='static'>${guest.cpu}</vcpu>`);
  lines.push('  <os>');
  lines.push(`    <type arch='x86_64'${plan.machine ? ` machine='${x(plan.machine)}'` : ''}>hvm</type>`);
  if (plan.kernel) {
    lines.push(`    <kernel>${x(plan.kernel)}</kernel>`);
    if (plan.initrd) lines.push(`    <initrd>${x(plan.initrd)}</initrd>`);
    if (plan.cmdline) lines.push(`    <cmdline>${x(plan.cmdline)}</cmdline>`);
  } else {
    lines.push(`    <boot dev='hd'/>`);
  }
  lines.push('  </os>');
  // ACPI is what shutdown (the power button) and reboot talk to.
  lines.push('  <features><acpi/><apic/></features>');
  lines.push('  <on_poweroff>destroy</on_poweroff>');
  lines.push('  <on_reboot>restart</on_reboot>');
  lines.push('  <on_crash>destroy</on_crash>');
  lines.push('  <devices>');
  if (guest.disks.some((d) => d.bus === 'scsi')) lines.push(`    <controller type='scsi' index='0' model='virtio-scsi'/>`);
  for (const disk of guest.disks) {
    if (!['virtio', 'scsi', 'sata', 'ide'].includes(disk.bus)) throw new StageRejection(400, `disk ${disk.device}: unknown bus "${disk.bus}" (ide, scsi, sata or virtio)`);
    const { pool, name } = splitVolume(disk.volume);
    lines.push(`    <disk type='volume' device='disk'>`);
    lines.push(`      <driver name='qemu' type='qcow2' discard='unmap'/>`);
    lines.push(`      <source pool='${x(pool)}' volume='${x(name)}'/>`);
    lines.push(`      <target dev='${x(disk.device)}' bus='${disk.bus}'/>`);
    lines.push('    </disk>');
  }
  for (const nic of guest.nics) {
    // The backend kit's model names are libvirt's; anything else is refused before it reaches the XML.
    const model = nicModel(nic);
    checkMac(nic);
    const attachment = plan.nics.get(nic.name);
    if (!attachment) throw new Error(`nic ${nic.name}: no attachment planned`);
    lines.push(`    <interface type='${attachment.kind}'>`);
    if (attachment.kind === 'bridge') lines.push(`      <source bridge='${x(attachment.bridge)}'/>`);
    if (attachment.kind === 'network') lines.push(`      <source network='${x(attachment.network)}'/>`);
    lines.push(`      <mac address='${x(nic.mac)}'/>`);
    // A fixed host device name maps libvirt's interface statistics back to the NIC.
    if (attachment.kind !== 'user' && nic.device) lines.push(`      <target dev='${x(nic.device)}'/>`);
    lines.push(`      <model type='${model}'/>`);
    if (nic.vlans.length > 0) {
      lines.push(`      <vlan${nic.vlans.length > 1 ? ` trunk='yes'` : ''}>`);
      for (const id of nic.vlans) lines.push(`        <tag id='${id}'/>`);
      lines.push('      </vlan>');
    }
    lines.push('    </interface>');
  }
  if (plan.consoleSocket && plan.consoleLog) {
    lines.push(`    <serial type='unix'><source mode='bind' path='${x(plan.consoleSocket)}'/><log file='${x(plan.consoleLog)}' append='on'/><target port='0'/></serial>`);
  } else if (plan.consoleLog) {
    lines.push(`    <serial type='file'><source path='${x(plan.consoleLog)}' append='on'/><target port='0'/></serial>`);
  }
  if (plan.serialSocket) {
    lines.push(`    <serial type='unix'><source mode='bind' path='${x(plan.serialSocket)}'/><target port='1'/></serial>`);
  }
  if (plan.vncListen) {
    lines.push(`    <graphics type='vnc' port='-1' autoport='yes' listen='${x(plan.vncListen)}'/>`);
    lines.push(`    <video><model type='vga'/></video>`);
  }
  lines.push('  </devices>');
  lines.push('</domain>');
  return lines.join('\n') + '\n';
}
