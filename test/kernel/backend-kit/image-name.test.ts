/** Image names from the API are plain file names in a backend's images folder. */
import { expect } from 'chai';
import { checkImageName, invalidImageName, StageRejection } from '../../../core/contract/index.js';

describe('backend kit: image names', () => {
  it('accepts plain file names, dots inside included', () => {
    for (const name of ['debian-12.qcow2', 'vmlinuz', 'ubuntu_24.04.img', 'A1']) expect(invalidImageName(name), name).to.equal(undefined);
  });
  it('refuses paths, "..", NUL, a leading "-" (an option to qemu-img) or "." (a download in progress), and nothing', () => {
    const cases: Record<string, string> = {
      '': 'is empty',
      '../etc/passwd': 'is a path',
      '/etc/passwd': 'is a path',
      'a/b': 'is a path',
      'x\0y': 'is a path',
      '..': 'contains ".."',
      'a..b': 'contains ".."',
      '-o': 'starts with "-" or "."',
      '.partial-debian': 'starts with "-" or "."',
      '.': 'starts with "-" or "."',
    };
    for (const [name, why] of Object.entries(cases)) expect(invalidImageName(name), JSON.stringify(name)).to.equal(why);
  });
  it('answers 400 naming what the name was for, never the host folder', () => {
    const error = (() => {
      try {
        checkImageName('../secret', 'kernel');
      } catch (e) {
        return e as StageRejection;
      }
    })();
    expect(error).to.be.instanceOf(StageRejection);
    expect(error!.status).to.equal(400);
    expect(error!.message).to.equal('kernel "../secret" must be a file name in the images folder, not a path (it is a path)');
    expect(() => checkImageName('base.qcow2')).to.not.throw();
  });
});
