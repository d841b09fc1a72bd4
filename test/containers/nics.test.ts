/**
 * Container NICs on a real LXC 5: a container with two NICs on two bridges
 * this test makes, its config lines made by plugins/lxc/container-nics.ts.
 * Inside (lxc-attach), `ip addr` and `ip route` show the addresses, MACs
 * and the default route through the gateway; on the host the veth ends
 * carry the NICs' device names and sit on their bridges; the host pings
 * the container and the container the host over the bridge; a missing
 * bridge is refused before anything is made. Everything removed after.
 */
import { expect } from 'chai';
import { existsSync, readlinkSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { StageRejection, tapName, type Guest, type Nic } from '../../core/contract/index.js';
import { checkBridges, checkStartable, nicConfigLines, planContainerNics, type ContainerNic } from '../../plugins/lxc/container-nics.js';
import { LxcWorld, run, uniqueName } from './nics-world.js';

/** The bridge a host device is plugged into, or undefined. */
const masterOf = (device: string): string | undefined => {
  const link = `/sys/class/net/${device}/master`;
  return existsSync(link) ? path.basename(readlinkSync(link)) : undefined;
};

async function expectRejected(promise: Promise<unknown>, message: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: Error) => e,
  );
  expect(error?.message, 'rejected').to.include(message);
}

describe('container NICs on LXC: veth pairs on bridges, the address applied inside', function () {
  this.timeout(180_000);
  let world: LxcWorld;
  // Two /24s of 10.0.0.0/8 unlikely to meet another run's (or another helper's) bridges.
  const a = `10.${randomInt(200, 250)}.${randomInt(0, 256)}`;
  const b = `10.${randomInt(150, 200)}.${randomInt(0, 256)}`;
  const name = uniqueName('hknic-');
  const id = crypto.randomUUID();
  let bridgeA: string;
  let bridgeB: string;
  let guest: Guest;
  let planned: ContainerNic[];

  const nic = (index: number, fields: Partial<Nic>): Nic => ({
    name: `net${index}`,
    network: '',
    model: 'virtio',
    mac: `52:54:00:${randomInt(0, 256).toString(16).padStart(2, '0')}:00:0${index}`,
    address: '',
    netmask: '',
    gateway: '',
    device: tapName(id, index),
    vlans: [],
    ...fields,
  });

  before(async () => {
    world = await LxcWorld.create();
    bridgeA = await world.bridge(`${a}.1/24`);
    bridgeB = await world.bridge(`${b}.1/24`);
    guest = {
      id,
      type: 'container',
      image: 'busybox',
      nics: [nic(0, { network: bridgeA, address: `${a}.2`, netmask: '255.255.255.0', gateway: `${a}.1` }), nic(1, { network: bridgeB, address: `${b}.3/24` })],
      disks: [],
      state: 'off',
      memory: 64,
      cpu: 1,
      vnc: 0,
      metadata: {},
    };
    planned = planContainerNics(guest);
    checkBridges(planned);
    await checkStartable(planned);
    await world.start(name, nicConfigLines(planned));
  });

  after(async () => {
    await world?.dispose();
    // Nothing of this test is left on the host.
    for (const device of [bridgeA, bridgeB, tapName(id, 0), tapName(id, 1)]) if (device) expect(existsSync(`/sys/class/net/${device}`), `${device} removed`).to.equal(false);
  });

  it('shows each NIC inside as eth<i> with its MAC and address, and the default route through the gateway', async () => {
    const addr = await world.attach(name, ['ip', 'addr']);
    const eth0 = addr.slice(addr.indexOf(': eth0'), addr.indexOf(': eth1'));
    const eth1 = addr.slice(addr.indexOf(': eth1'));
    expect(eth0, addr).to.include(`link/ether ${guest.nics[0].mac}`).and.include(`inet ${a}.2/24 brd ${a}.255`);
    expect(eth1, addr).to.include(`link/ether ${guest.nics[1].mac}`).and.include(`inet ${b}.3/24 brd ${b}.255`);
    expect(eth0, 'eth0 is up').to.match(/<[^>]*\bUP\b[^>]*>/);
    const route = await world.attach(name, ['ip', 'route']);
    expect(route).to.match(new RegExp(`^default via ${a.replaceAll('.', '\\.')}\\.1 dev eth0`, 'm'));
    expect(route).to.match(new RegExp(`^${b.replaceAll('.', '\\.')}\\.0/24 dev eth1`, 'm'));
  });

  it('puts the host ends, named as the NICs devices, on the bridges their networks name', () => {
    expect(masterOf(tapName(id, 0))).to.equal(bridgeA);
    expect(masterOf(tapName(id, 1))).to.equal(bridgeB);
    expect(tapName(id, 1).length).to.be.at.most(15);
  });

  it('carries traffic over the bridge both ways: host to container and container to host', async () => {
    await run('busybox', ['ping', '-c', '2', '-W', '10', `${a}.2`]);
    await run('busybox', ['ping', '-c', '2', '-W', '10', `${b}.3`]);
    const out = await world.attach(name, ['ping', '-c', '2', '-W', '10', `${a}.1`]);
    expect(out).to.match(/2 packets transmitted, 2 packets received/);
  });

  it('refuses a NIC on a bridge the host lacks, before anything is made; at start, a bridge gone or a host device taken is a fault', async () => {
    const missing = uniqueName('hkno');
    const other = { ...guest, id: crypto.randomUUID(), nics: [nic(0, { network: missing, device: tapName(crypto.randomUUID(), 0) })] };
    const plan = planContainerNics(other);
    let refused: unknown;
    try {
      checkBridges(plan);
    } catch (error) {
      refused = error;
    }
    expect(StageRejection.is(refused) && refused.status).to.equal(400);
    expect((refused as Error).message).to.match(new RegExp(`net0: network "${missing}" is not a bridge on this host; create it`));
    await expectRejected(checkStartable(plan), `bridge "${missing}" does not exist on this host any more`);
    // The running container holds its host ends: a second start of the same NICs must not reach LXC.
    await expectRejected(checkStartable(planned), `host device ${tapName(id, 0)} already exists`);
  });

  it('removes the host ends when the container stops', async () => {
    await world.stop(name);
    expect(existsSync(`/sys/class/net/${tapName(id, 0)}`)).to.equal(false);
    expect(existsSync(`/sys/class/net/${tapName(id, 1)}`)).to.equal(false);
    // And it starts again on the same names.
    await checkStartable(planned);
    await world.startAgain(name);
    expect(masterOf(tapName(id, 0))).to.equal(bridgeA);
  });
});
