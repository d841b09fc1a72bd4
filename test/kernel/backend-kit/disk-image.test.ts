/** Which image each disk is built on: its own, else the guest's for the first disk. */
import { expect } from 'chai';
import { diskImage, imagesOfDisks, type Disk } from '../../../core/contract/index.js';

const disk = (image = ''): Disk => ({ bus: 'virtio', device: 'vda', size: 0, volume: '', image, source: '' });

describe('backend kit: disk images', () => {
  it("builds the first disk on the guest's image unless it names its own; later disks only on their own", () => {
    const guest = { image: 'debian', disks: [disk(), disk(), disk('data')] };
    expect([0, 1, 2].map((i) => diskImage(guest, i))).to.deep.equal(['debian', '', 'data']);
    expect(diskImage({ image: 'debian', disks: [disk('alpine')] }, 0)).to.equal('alpine');
  });
  it('lists each image the disks are built on once, and none for a guest without disks', () => {
    expect([...imagesOfDisks({ image: 'debian', disks: [disk(), disk('debian'), disk('data'), disk()] })]).to.deep.equal(['debian', 'data']);
    expect(imagesOfDisks({ image: 'debian', disks: [] }).size).to.equal(0);
  });
});
