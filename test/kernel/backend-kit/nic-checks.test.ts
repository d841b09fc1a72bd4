/** NIC checks: the model list every backend offers, MACs, and names usable as device ids. */
import { expect } from 'chai';
import { checkMac, checkNicName, NIC_MODELS, nicModel, StageRejection } from '../../../core/contract/index.js';

function rejection(fn: () => unknown): StageRejection {
  try {
    fn();
  } catch (error) {
    if (error instanceof StageRejection) return error;
    throw error;
  }
  throw new Error('expected a StageRejection');
}

describe('backend kit: NIC checks', () => {
  it('maps every name clients use for a model to one of the models, "" to virtio', () => {
    expect(nicModel({ name: 'net0', model: '' })).to.equal('virtio');
    for (const alias of ['virtio', 'virtio-net', 'virtio-net-pci']) expect(nicModel({ name: 'net0', model: alias })).to.equal('virtio');
    for (const model of NIC_MODELS) expect(nicModel({ name: 'net0', model })).to.equal(model);
  });
  it('refuses anything else with a 400 listing the models (no option smuggled in)', () => {
    const error = rejection(() => nicModel({ name: 'net1', model: 'e1000,romfile=/etc/shadow' }));
    expect(error.status).to.equal(400);
    expect(error.message).to.equal('nic net1: unknown model "e1000,romfile=/etc/shadow" (one of virtio, virtio-net, virtio-net-pci, e1000, e1000e, rtl8139, vmxnet3)');
    expect(rejection(() => nicModel({ name: 'net1', model: "virtio'/><evil" })).status).to.equal(400);
  });
  it('accepts MACs of six hex pairs in either case and refuses others', () => {
    for (const mac of ['52:54:00:12:34:56', '02:AB:cd:EF:00:ff']) expect(() => checkMac({ name: 'net0', mac })).to.not.throw();
    for (const mac of ['', '52:54:00:12:34', '52-54-00-12-34-56', '52:54:00:12:34:56,x', 'zz:54:00:12:34:56']) {
      const error = rejection(() => checkMac({ name: 'net0', mac }));
      expect(error.status).to.equal(400);
      expect(error.message).to.equal(`nic net0: bad MAC "${mac}"`);
    }
  });
  it('accepts NIC names usable as device ids and refuses the rest', () => {
    for (const name of ['net0', 'uplink_2', 'a-b']) expect(() => checkNicName({ name })).to.not.throw();
    for (const name of ['', 'net.0', 'a:b', 'x,id=y']) expect(rejection(() => checkNicName({ name })).message).to.equal(`nic name "${name}" must be letters, digits, _ and -`);
  });
});
