/**
 * bench/RESULTS.md is written by several bench scripts; `npm run bench`
 * must replace only its own section and keep every other script's section
 * byte for byte, on the file as committed (written before the markers) and
 * on one that has them.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { OWN_BEGIN, OWN_END, withOwnSection } from '../../bench/support/results-file.js';

const committed = readFileSync(path.resolve('bench/RESULTS.md'), 'utf8');
const run = (n: number) => `# Benchmark results\n\nrun ${n}\n\n| case | metric |\n| --- | --- |\n\n## Notes per case\n\n### get-guest\n`;
/** Sections other scripts own, as they appear in the committed file (from their marker or heading on). */
function foreignPart(text: string): string {
  const at = text.search(/^(<!-- images:start|<!-- scrape bench: begin|## Fleet link)/m);
  return at < 0 ? '' : text.slice(at);
}

describe('bench/RESULTS.md sections', () => {
  it('replaces only its own section of the committed file, keeping the others as they are', () => {
    const others = committed.includes(OWN_END) ? committed.slice(committed.indexOf(OWN_END) + OWN_END.length) : foreignPart(committed);
    const once = withOwnSection(committed, run(1));
    expect(once.startsWith(`${OWN_BEGIN}\n# Benchmark results\n\nrun 1`)).to.equal(true);
    expect(once.endsWith(others)).to.equal(true);
    for (const marker of ['<!-- images:start', '<!-- scrape bench: begin', '## Fleet link (etcd)']) {
      if (committed.includes(marker)) expect(once).to.include(marker);
    }
  });

  it('rewrites its marked section in place, wherever it is, and nothing else', () => {
    const before = `<!-- images:start -->\nimages\n<!-- images:end -->\n\n${OWN_BEGIN}\nold\n${OWN_END}\n\n## Fleet link (etcd)\n\nfleet\n`;
    const after = withOwnSection(before, run(2));
    expect(after).to.equal(`<!-- images:start -->\nimages\n<!-- images:end -->\n\n${OWN_BEGIN}\n${run(2).trim()}\n${OWN_END}\n\n## Fleet link (etcd)\n\nfleet\n`);
    expect(withOwnSection(after, run(2))).to.equal(after);
  });

  it('starts a file of its own when there is none', () => {
    expect(withOwnSection('', run(3))).to.equal(`${OWN_BEGIN}\n${run(3).trim()}\n${OWN_END}\n`);
  });
});
