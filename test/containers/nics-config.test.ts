/**
 * A container guest's NICs as LXC config lines: what each NIC field becomes,
 * and the 400 for every value LXC could not take, that would fail inside
 * the container, or that would smuggle config lines in. No host needed
 * (the bridge checks against the host are in nics.test.ts).
 */
import { expect } from 'chai';
import { StageRejection, tapName, type Guest, type Nic } from '../../core/contract/index.js';
import { nicAddress, nicConfigLines, nicDevices, planContainerNics } from '../../plugins/lxc/container-nics.js';

const ID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

function nic(index: number, fields: Partial<Nic> = {}): Nic {
  return { name: `net${index}`, network: 'br0', model: 'virtio', mac: `52:54:00:00:00:0${index}`, address: '', netmask: '', gateway: '', device: tapName(ID, index), vlans: [], ...fields };
}

function guest(nics: Nic[]): Guest {
  return { id: ID, type: 'container', image: 'web', nics, disks: [], state: 'off', memory: 256, cpu: 1, vnc: 0, metadata: {} };
}

/** The 400 a plan of these NICs is refused with. */
function refusal(nics: Nic[]): string {
  try {
    planContainerNics(guest(nics));
  } catch (error) {
    expect(StageRejection.is(error), `a StageRejection, not ${String(error)}`).to.equal(true);
    expect((error as StageRejection).status).to.equal(400);
    return (error as Error).message;
  }
  expect.fail('the NICs were accepted');
}

describe('container NICs as LXC config', () => {
  it('makes a veth per NIC: host end the NIC device on its bridge, eth<i> inside with the MAC, address/prefix broadcast and gateway', () => {
    const lines = nicConfigLines(
      planContainerNics(
        guest([
          nic(0, { address: '10.1.2.3', netmask: '255.255.255.0', gateway: '10.1.2.1', mac: '52:54:00:AA:BB:CC' }),
          nic(1, { network: 'br1', address: '192.168.7.9/28' }),
          nic(2, { network: 'br2', address: 'fd00:1::5', netmask: '64', gateway: 'fd00:1::1' }),
          nic(3, { network: 'br3' }),
        ]),
      ),
    );
    expect(lines).to.deep.equal([
      'lxc.net.0.type = veth',
      'lxc.net.0.link = br0',
      `lxc.net.0.veth.pair = ${tapName(ID, 0)}`,
      'lxc.net.0.name = eth0',
      'lxc.net.0.hwaddr = 52:54:00:aa:bb:cc',
      'lxc.net.0.flags = up',
      'lxc.net.0.ipv4.address = 10.1.2.3/24 10.1.2.255',
      'lxc.net.0.ipv4.gateway = 10.1.2.1',
      'lxc.net.1.type = veth',
      'lxc.net.1.link = br1',
      `lxc.net.1.veth.pair = ${tapName(ID, 1)}`,
      'lxc.net.1.name = eth1',
      'lxc.net.1.hwaddr = 52:54:00:00:00:01',
      'lxc.net.1.flags = up',
      'lxc.net.1.ipv4.address = 192.168.7.9/28 192.168.7.15',
      'lxc.net.2.type = veth',
      'lxc.net.2.link = br2',
      `lxc.net.2.veth.pair = ${tapName(ID, 2)}`,
      'lxc.net.2.name = eth2',
      'lxc.net.2.hwaddr = 52:54:00:00:00:02',
      'lxc.net.2.flags = up',
      'lxc.net.2.ipv6.address = fd00:1::5/64',
      'lxc.net.2.ipv6.gateway = fd00:1::1',
      'lxc.net.3.type = veth',
      'lxc.net.3.link = br3',
      `lxc.net.3.veth.pair = ${tapName(ID, 3)}`,
      'lxc.net.3.name = eth3',
      'lxc.net.3.hwaddr = 52:54:00:00:00:03',
      'lxc.net.3.flags = up',
    ]);
  });

  it('gives a guest without NICs a network namespace of its own with loopback only', () => {
    expect(nicConfigLines(planContainerNics(guest([])))).to.deep.equal(['lxc.net.0.type = empty']);
  });

  it('names the host end after the guest when the record has no device (within IFNAMSIZ)', () => {
    const [planned] = planContainerNics(guest([nic(0, { device: '' })]));
    expect(planned.hostDevice).to.equal(tapName(ID, 0));
    expect(planned.hostDevice.length).to.be.at.most(15);
    // The metrics' unchecked reading names the same devices.
    const both = guest([nic(0, { device: '' }), nic(1)]);
    expect(nicDevices(both).map((d) => d.hostDevice)).to.deep.equal(planContainerNics(both).map((p) => p.hostDevice));
  });

  it('reads netmasks as prefix lengths: dotted, bare or with a slash; /31 and /32 have no broadcast', () => {
    const cases: Array<[string, string, number]> = [
      ['10.0.0.2', '255.255.255.0', 24],
      ['10.0.0.2', '255.255.0.0', 16],
      ['10.0.0.2', '255.255.255.252', 30],
      ['10.0.0.2', '/20', 20],
      ['10.0.0.2', '8', 8],
      ['10.0.0.1', '255.255.255.254', 31],
      ['10.0.0.7', '255.255.255.255', 32],
      ['2001:db8::7', '/48', 48],
    ];
    for (const [address, netmask, prefix] of cases) {
      const ip = nicAddress({ name: 'net0', address, netmask, gateway: '' });
      expect(ip?.prefix, `${address} ${netmask}`).to.equal(prefix);
      if (prefix >= 31) expect(ip?.broadcast, `${address}/${prefix}`).to.equal(undefined);
    }
    expect(nicAddress({ name: 'net0', address: '', netmask: '', gateway: '' })).to.equal(undefined);
  });

  it('refuses each bad field with a 400 naming the NIC and what is wrong', () => {
    const cases: Array<[Partial<Nic>, RegExp]> = [
      [{ network: '' }, /net0: network is empty.*bridge/],
      [{ network: 'br0\nlxc.hook.pre-start = /bin/evil' }, /net0: network "br0[\s\S]*" is not a Linux bridge name/],
      [{ network: 'a-bridge-name-longer-than-15' }, /not a Linux bridge name/],
      [{ mac: '52:54:00:00:00:0g' }, /net0: bad MAC/],
      [{ mac: '52:54:00:00:00:01\nlxc.init.cmd = /bin/evil' }, /bad MAC/],
      [{ device: 'x'.repeat(16) }, /device .* is not a Linux interface name/],
      [{ address: '10.0.0.300', netmask: '24' }, /address "10.0.0.300" is not an IPv4 or IPv6 address/],
      [{ address: '10.0.0.2 lxc.evil = 1', netmask: '24' }, /is not an IPv4 or IPv6 address/],
      [{ address: '10.0.0.2' }, /address 10.0.0.2 needs a netmask/],
      [{ address: '10.0.0.2', netmask: '255.0.255.0' }, /netmask 255.0.255.0 is not contiguous/],
      [{ address: '10.0.0.2', netmask: '33' }, /netmask "33" is not a dotted IPv4 mask .* or a prefix length 0-32/],
      [{ address: 'fd00::2', netmask: '255.255.255.0' }, /netmask "255.255.255.0" is not a prefix length 0-128/],
      [{ address: '10.0.0.2/24', netmask: '255.255.0.0' }, /different prefix lengths \(\/24, \/16\)/],
      [{ address: '10.0.0.0', netmask: '24' }, /10.0.0.0 is the network address of 10.0.0.0\/24/],
      [{ address: '10.0.0.255', netmask: '24' }, /10.0.0.255 is the broadcast address/],
      [{ netmask: '24' }, /a netmask or gateway without an address/],
      [{ gateway: '10.0.0.1' }, /a netmask or gateway without an address/],
      [{ address: '10.0.0.2', netmask: '24', gateway: '10.0.1.1' }, /gateway 10.0.1.1 is not on the NIC's subnet 10.0.0.2\/24/],
      [{ address: '10.0.0.2', netmask: '24', gateway: '10.0.0.2' }, /gateway 10.0.0.2 is the NIC's own address/],
      [{ address: '10.0.0.2', netmask: '24', gateway: 'fd00::1' }, /gateway "fd00::1" is not an IPv4 address/],
      [{ address: 'fd00::2', netmask: '64', gateway: 'fd01::1' }, /not on the NIC's subnet fd00::2\/64/],
    ];
    for (const [fields, message] of cases) expect(refusal([nic(0, fields)]), JSON.stringify(fields)).to.match(message);
  });

  it('refuses two default routes of one family and two NICs on one host device', () => {
    expect(
      refusal([nic(0, { address: '10.0.0.2', netmask: '24', gateway: '10.0.0.1' }), nic(1, { address: '10.0.1.2', netmask: '24', gateway: '10.0.1.1' })]),
    ).to.match(/nics net0 and net1 both give an IPv4 gateway/);
    expect(refusal([nic(0), nic(1, { device: tapName(ID, 0) })])).to.match(/net1: host device .* is used by another NIC/);
    // One gateway per family is fine.
    expect(() =>
      planContainerNics(guest([nic(0, { address: '10.0.0.2', netmask: '24', gateway: '10.0.0.1' }), nic(1, { address: 'fd00::2', netmask: '64', gateway: 'fd00::1' })])),
    ).not.to.throw();
  });
});
