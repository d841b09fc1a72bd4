/**
 * A container guest's NICs: one veth pair each, the host end plugged into
 * the Linux bridge the NIC's `network` names (as the QEMU backend plugs its
 * taps), the container end named eth<index> inside with the guest's MAC and,
 * since a container shares the host's kernel, the NIC's `address`, `netmask`
 * and `gateway` set on it by LXC before the container's init runs.
 *
 * Everything here ends up in an LXC config file, one `key = value` a line,
 * so every client string is checked to be exactly what its key takes (an
 * interface name, six hex pairs, an IP address) before any line is made: a
 * newline smuggled into a value would add config of the client's choosing.
 */
import { existsSync } from 'node:fs';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { checkMac, forgetInterfaceCounters, isInterfaceName, MAX_INTERFACE_NAME, StageRejection, tapName, type Guest, type Nic } from '../../core/contract/index.js';

/** One NIC as LXC will make it. */
export interface ContainerNic {
  nic: Nic;
  /** The host end of the veth pair: the NIC's `device` (the name the kernel gave it at create, as for a QEMU tap). */
  hostDevice: string;
  /** The container end's name inside: eth0, eth1, ... in the guest's NIC order. */
  inside: string;
  bridge: string;
  ip?: NicAddress;
}

/** An address to set inside, with its prefix length and, on at most one NIC per family, the default gateway. */
export interface NicAddress {
  family: 4 | 6;
  address: string;
  prefix: number;
  /** IPv4 only: the subnet's broadcast address (LXC 5 writes 0.0.0.255-like ones when left to itself). */
  broadcast?: string;
  gateway?: string;
}

const SYS_NET = '/sys/class/net';

/** Whether `name` is a Linux bridge on this host (a name that cannot be an interface never reaches /sys). */
export function isBridge(name: string): boolean {
  return isInterfaceName(name) && existsSync(`${SYS_NET}/${name}/bridge`);
}

/**
 * The guest's NICs as LXC will make them, every field checked: a 400 naming
 * the NIC and the field for anything LXC could not take or that would fail
 * inside the container (a gateway off the NIC's subnet, two default routes).
 * Pure: the host is not looked at (see {@link checkBridges}).
 */
export function planContainerNics(guest: Guest): ContainerNic[] {
  const planned = guest.nics.map((nic, index) => planNic(guest, nic, index));
  for (const family of [4, 6] as const) {
    const withGateway = planned.filter((p) => p.ip?.family === family && p.ip.gateway);
    if (withGateway.length > 1) {
      throw new StageRejection(400, `nics ${withGateway.map((p) => p.nic.name).join(' and ')} both give an IPv${family} gateway; a container has one default route per address family: give the gateway on one NIC only`);
    }
  }
  const devices = new Set<string>();
  for (const p of planned) {
    if (devices.has(p.hostDevice)) throw new StageRejection(400, `nic ${p.nic.name}: host device "${p.hostDevice}" is used by another NIC of this guest`);
    devices.add(p.hostDevice);
  }
  return planned;
}

/** The host end of NIC `index`: its `device` (the kernel names it at create), or the same scheme as QEMU's taps for a record without one. */
function hostDeviceOf(guest: Guest, index: number): string {
  return guest.nics[index].device || tapName(guest.id, index);
}

/**
 * A guest's NICs and their host ends, unchecked: for the metrics of a
 * guest whose NICs were checked at its create (planContainerNics checks
 * every field, a per-request cost the metrics need not pay).
 */
export function nicDevices(guest: Guest): Array<{ nic: Nic; hostDevice: string }> {
  return guest.nics.map((nic, index) => ({ nic, hostDevice: hostDeviceOf(guest, index) }));
}

function planNic(guest: Guest, nic: Nic, index: number): ContainerNic {
  const device = hostDeviceOf(guest, index);
  if (!isInterfaceName(device)) throw new StageRejection(400, `nic ${nic.name}: device "${device}" is not a Linux interface name (letters, digits, _ . -, at most ${MAX_INTERFACE_NAME})`);
  if (!nic.network) throw new StageRejection(400, `nic ${nic.name}: network is empty; a container NIC is a veth pair whose host end joins a bridge: name a Linux bridge of this host`);
  if (!isInterfaceName(nic.network)) throw new StageRejection(400, `nic ${nic.name}: network "${nic.network}" is not a Linux bridge name (letters, digits, _ . -, at most ${MAX_INTERFACE_NAME})`);
  checkMac(nic);
  const planned: ContainerNic = { nic, hostDevice: device, inside: `eth${index}`, bridge: nic.network };
  const ip = nicAddress(nic);
  if (ip) planned.ip = ip;
  return planned;
}

/** The NIC's address, prefix and gateway, checked; undefined when it has no address (the container brings the link up without one). */
export function nicAddress(nic: Pick<Nic, 'name' | 'address' | 'netmask' | 'gateway'>): NicAddress | undefined {
  // An address may carry its prefix itself (10.0.0.2/24), as `ip` writes it.
  const [address, inlinePrefix, ...rest] = nic.address.split('/');
  if (!nic.address) {
    if (nic.netmask || nic.gateway) throw new StageRejection(400, `nic ${nic.name}: a netmask or gateway without an address; give the address too`);
    return undefined;
  }
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (!family || rest.length > 0) throw new StageRejection(400, `nic ${nic.name}: address "${nic.address}" is not an IPv4 or IPv6 address`);
  const fromAddress = inlinePrefix === undefined ? undefined : prefixLength(nic.name, inlinePrefix, family, 'address');
  const fromNetmask = nic.netmask ? prefixLength(nic.name, nic.netmask, family, 'netmask') : undefined;
  if (fromAddress !== undefined && fromNetmask !== undefined && fromAddress !== fromNetmask) {
    throw new StageRejection(400, `nic ${nic.name}: address ${nic.address} and netmask ${nic.netmask} give different prefix lengths (/${fromAddress}, /${fromNetmask})`);
  }
  const prefix = fromAddress ?? fromNetmask;
  if (prefix === undefined) {
    throw new StageRejection(400, `nic ${nic.name}: address ${address} needs a netmask (${family === 4 ? '255.255.255.0 or 24' : 'a prefix length such as 64'}), or write it as ${address}/${family === 4 ? 24 : 64}`);
  }
  const ip: NicAddress = { family, address, prefix };
  if (family === 4) {
    const value = ipv4Number(address);
    const hostBits = 32 - prefix;
    const network = hostBits === 32 ? 0 : (value >>> hostBits) << hostBits >>> 0;
    const broadcast = (network | (hostBits === 32 ? 0xffffffff : (2 ** hostBits - 1))) >>> 0;
    // /31 and /32 have no network or broadcast address to avoid (RFC 3021).
    if (prefix < 31 && (value === network || value === broadcast)) throw new StageRejection(400, `nic ${nic.name}: ${address} is the ${value === network ? 'network' : 'broadcast'} address of ${ipv4Text(network)}/${prefix}, not a host's`);
    if (prefix < 31) ip.broadcast = ipv4Text(broadcast);
  }
  if (nic.gateway) ip.gateway = checkGateway(nic, ip);
  return ip;
}

function checkGateway(nic: Pick<Nic, 'name' | 'gateway'>, ip: NicAddress): string {
  const gateway = nic.gateway;
  if (ip.family === 4 ? !isIPv4(gateway) : !isIPv6(gateway)) throw new StageRejection(400, `nic ${nic.name}: gateway "${gateway}" is not an IPv${ip.family} address (the NIC's address ${ip.address} is)`);
  if (gateway === ip.address) throw new StageRejection(400, `nic ${nic.name}: gateway ${gateway} is the NIC's own address`);
  // LXC adds the default route through the NIC: the gateway must be a neighbour on its subnet.
  const subnet = new BlockList();
  const type = ip.family === 4 ? 'ipv4' : 'ipv6';
  subnet.addSubnet(ip.address, ip.prefix, type);
  if (!subnet.check(gateway, type)) throw new StageRejection(400, `nic ${nic.name}: gateway ${gateway} is not on the NIC's subnet ${ip.address}/${ip.prefix}`);
  return gateway;
}

/** A netmask as a prefix length: dotted (255.255.255.0, contiguous ones) for IPv4, or the length itself (24, /24) for either family. */
function prefixLength(nicName: string, text: string, family: 4 | 6, field: 'address' | 'netmask'): number {
  const max = family === 4 ? 32 : 128;
  const bare = field === 'netmask' && text.startsWith('/') ? text.slice(1) : text;
  if (/^\d{1,3}$/.test(bare) && Number(bare) <= max) return Number(bare);
  if (family === 4 && field === 'netmask' && isIPv4(text)) {
    const mask = ipv4Number(text);
    const ones = 32 - Math.log2(2 ** 32 - mask);
    if (Number.isInteger(ones)) return ones;
    throw new StageRejection(400, `nic ${nicName}: netmask ${text} is not contiguous ones then zeros (like 255.255.255.0)`);
  }
  const expected = family === 4 ? 'a dotted IPv4 mask (255.255.255.0) or a prefix length 0-32' : 'a prefix length 0-128';
  throw new StageRejection(400, `nic ${nicName}: ${field === 'netmask' ? `netmask "${text}"` : `prefix "/${text}" of the address`} is not ${expected}`);
}

function ipv4Number(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function ipv4Text(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

/**
 * A 400 unless every NIC's network is a bridge on this host now (before
 * anything is made: a create refused here leaves nothing behind).
 */
export function checkBridges(nics: readonly ContainerNic[]): void {
  for (const { nic, bridge } of nics) {
    if (!isBridge(bridge)) throw new StageRejection(400, `nic ${nic.name}: network "${bridge}" is not a bridge on this host; create it (ip link add ${bridge} type bridge, see docs/containers.md) or name another`);
  }
}

/** How long a host end of a container that just stopped may take to go (its network namespace is torn down after the container's last process). */
const HOST_END_GONE_MS = 2000;

/**
 * At start: the bridges are still there (a host reboot or an operator may
 * have removed one since the create; LXC's own error would not say which)
 * and no host end is left under a name LXC is about to use. A fault (5xx),
 * not a refusal: the guest was valid when created.
 */
export async function checkStartable(nics: readonly ContainerNic[]): Promise<void> {
  for (const { nic, bridge, hostDevice } of nics) {
    if (!isBridge(bridge)) throw new Error(`nic ${nic.name}: bridge "${bridge}" does not exist on this host any more; create it (see docs/containers.md) or recreate the guest`);
    for (const deadline = Date.now() + HOST_END_GONE_MS; existsSync(`${SYS_NET}/${hostDevice}`); ) {
      if (Date.now() > deadline) throw new Error(`nic ${nic.name}: host device ${hostDevice} already exists (another container or an earlier run holds it); LXC cannot make the veth pair`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** The LXC config lines of the guest's NICs (none: a network namespace with loopback only). */
export function nicConfigLines(nics: readonly ContainerNic[]): string[] {
  if (nics.length === 0) return ['lxc.net.0.type = empty'];
  return nics.flatMap((p, i) => {
    const key = `lxc.net.${i}`;
    const lines = [
      `${key}.type = veth`,
      `${key}.link = ${p.bridge}`,
      `${key}.veth.pair = ${p.hostDevice}`,
      `${key}.name = ${p.inside}`,
      `${key}.hwaddr = ${p.nic.mac.toLowerCase()}`,
      `${key}.flags = up`,
    ];
    const ip = p.ip;
    if (ip?.family === 4) {
      lines.push(`${key}.ipv4.address = ${ip.address}/${ip.prefix}${ip.broadcast ? ` ${ip.broadcast}` : ''}`);
      if (ip.gateway) lines.push(`${key}.ipv4.gateway = ${ip.gateway}`);
    } else if (ip?.family === 6) {
      lines.push(`${key}.ipv6.address = ${ip.address}/${ip.prefix}`);
      if (ip.gateway) lines.push(`${key}.ipv6.gateway = ${ip.gateway}`);
    }
    return lines;
  });
}

/** After a stop or at delete: the kept-open counter files of the host ends (LXC removed the devices with the container's namespace). */
export function forgetNicCounters(nics: readonly ContainerNic[]): void {
  for (const { hostDevice } of nics) forgetInterfaceCounters(hostDevice);
}
