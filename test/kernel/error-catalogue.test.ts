/** The error catalogue: one code per kind; stage refusals recognised by type, even from another copy of the contract. */
import { expect } from 'chai';
import { ERROR_CATALOGUE, Errors, HyperkernError } from '../../core/errors.js';
import { StageRejection } from '../../core/contract/index.js';

describe('error catalogue', () => {
  it('gives every kind of failure its own code and a meaning', () => {
    const entries = Object.values(ERROR_CATALOGUE);
    expect(new Set(entries.map((e) => e.code)).size, 'codes are unique').to.equal(entries.length);
    for (const entry of entries) {
      expect(entry.code).to.match(/^HK_ERR_[A-Z_]+$/);
      expect(entry.means).to.be.a('string').and.not.equal('');
    }
  });

  it('makes errors only from catalogue entries, with the entry\'s status unless a stage chose one', () => {
    const e = Errors.pluginDependency('x needs y');
    expect(e).to.be.instanceOf(HyperkernError);
    expect(e).to.include({ code: 'HK_ERR_PLUGIN_DEPENDENCY', status: 500, kind: 'pluginDependency' });
    expect(Errors.stageRejected(422, 'no')).to.include({ code: 'HK_ERR_STAGE_REJECTED', status: 422 });
  });

  it('recognises a StageRejection by its brand, not its name', () => {
    expect(StageRejection.is(new StageRejection(409, 'no'))).to.equal(true);
    // What a plugin built against another checkout of the contract throws: same registered brand.
    const foreign = Object.assign(new Error('no'), { status: 409, [Symbol.for('hyperkern.StageRejection')]: true });
    expect(StageRejection.is(foreign)).to.equal(true);
    const impostor = Object.assign(new Error('no'), { name: 'StageRejection', status: 409 });
    expect(StageRejection.is(impostor), 'a name alone is not enough').to.equal(false);
  });
});
