/**
 * core/startup-gc.ts in a real Node process started with the agent's flags:
 * what start-up leaves behind (here: many objects that survived into the old
 * generation, then dropped) is collected and its pages given back, and
 * without --expose-gc the call does nothing.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { AGENT_NODE_FLAGS } from '../../core/runtime-flags.js';
import { distRoot } from '../support/agent.js';

const MiB = 1024 * 1024;

/** Old-generation committed bytes before and after releaseStartupGarbage, in a child node with `flags`. */
function oldSpaceAround(flags: readonly string[]): { before: number; after: number } {
  const module = pathToFileURL(path.join(distRoot, 'core/startup-gc.js')).href;
  const script = `
    import v8 from 'node:v8';
    import { releaseStartupGarbage } from ${JSON.stringify(module)};
    const oldSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_size;
    // Start-up's kind of garbage: rows that lived long enough to be promoted, then were dropped.
    let rows = [];
    for (let i = 0; i < 300000; i++) rows.push({ id: 'guest-' + i, text: JSON.stringify({ i, name: 'n' + i }) });
    rows = undefined;
    const before = oldSpace();
    releaseStartupGarbage();
    console.log(JSON.stringify({ before, after: oldSpace() }));
  `;
  return JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 }));
}

describe('start-up garbage', function () {
  this.timeout(120_000);

  it("with the agent's flags, one call collects and compacts the old generation", () => {
    const { before, after } = oldSpaceAround(AGENT_NODE_FLAGS);
    expect(before, 'the garbage reached the old generation').to.be.above(20 * MiB);
    expect(after, `old space ${(before / MiB).toFixed(1)} → ${(after / MiB).toFixed(1)} MiB`).to.be.below(before / 2);
  });

  it('without --expose-gc it does nothing (no collection is forced)', () => {
    const { before, after } = oldSpaceAround(AGENT_NODE_FLAGS.filter((f) => f !== '--expose-gc'));
    expect(after).to.equal(before);
  });
});
