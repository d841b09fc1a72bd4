/** Host device (tap) names: one function, used by the kernel at create and by backends. */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { isInterfaceName, MAX_INTERFACE_NAME, tapName } from '../../../core/contract/index.js';
import { parseNewGuest } from '../../../core/guests/guest-factory.js';

describe('backend kit: device names', () => {
  it('names a NIC\'s tap from the guest id and the NIC index, within the Linux limit', () => {
    expect(tapName('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', 0)).to.equal('hk0f1e2d3cn0');
    expect(tapName('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', 31)).to.equal('hk0f1e2d3cn31');
    const longest = tapName(randomUUID(), 31);
    expect(longest.length).to.be.at.most(MAX_INTERFACE_NAME);
    expect(isInterfaceName(longest)).to.equal(true);
  });
  it('is the name the kernel gives each NIC at create', () => {
    const { guest } = parseNewGuest({ nics: [{ network: 'br0' }, { network: '' }] });
    expect(guest.nics.map((n) => n.device)).to.deep.equal([tapName(guest.id, 0), tapName(guest.id, 1)]);
  });
  it('tells Linux interface names from what is not one', () => {
    for (const name of ['br0', 'hk1234abcdn0', 'vnet.12', 'a_b-c']) expect(isInterfaceName(name), name).to.equal(true);
    for (const name of ['', 'x'.repeat(MAX_INTERFACE_NAME + 1), 'a/b', 'a b', '.', '..', 'tap;rm']) expect(isInterfaceName(name), name).to.equal(false);
  });
});
