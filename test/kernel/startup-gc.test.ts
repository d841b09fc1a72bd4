/**
 * core/startup-gc.ts in a real Node process started with the agent's flags:
 * what start-up leaves behind (many objects that survived into the old
 * generation, then dropped, and a young generation grown to its maximum by
 * them) is collected, the old generation compacted and the young one shrunk
 * back to its initial size.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { AGENT_NODE_FLAGS } from '../../core/runtime-flags.js';
import { distRoot } from '../support/agent.js';

const MiB = 1024 * 1024;

interface Spaces {
  old: number;
  young: number;
}

/** Old- and young-generation committed bytes before and after releaseStartupGarbage, in a child node with the agent's flags. */
function spacesAround(): { before: Spaces; after: Spaces } {
  const module = pathToFileURL(path.join(distRoot, 'core/startup-gc.js')).href;
  const script = `
    import v8 from 'node:v8';
    import { releaseStartupGarbage } from ${JSON.stringify(module)};
    const spaces = () => {
      const size = (name) => v8.getHeapSpaceStatistics().find((s) => s.space_name === name).space_size;
      return { old: size('old_space'), young: size('new_space') };
    };
    // Start-up's kind of garbage: rows that lived long enough to be promoted, then were dropped.
    let rows = [];
    for (let i = 0; i < 300000; i++) rows.push({ id: 'guest-' + i, text: JSON.stringify({ i, name: 'n' + i }) });
    rows = undefined;
    const before = spaces();
    await releaseStartupGarbage();
    console.log(JSON.stringify({ before, after: spaces() }));
  `;
  return JSON.parse(execFileSync(process.execPath, [...AGENT_NODE_FLAGS, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 }));
}

describe('start-up garbage', function () {
  this.timeout(120_000);

  it("with the agent's flags, one call collects and compacts the old generation and shrinks the young one", () => {
    const { before, after } = spacesAround();
    const shown = (s: Spaces) => `old ${(s.old / MiB).toFixed(1)} MiB, young ${(s.young / MiB).toFixed(1)} MiB`;
    const change = `${shown(before)} → ${shown(after)}`;
    expect(before.old, `the garbage reached the old generation (${change})`).to.be.above(20 * MiB);
    expect(before.young, `the survivors grew the young generation (${change})`).to.be.at.least(8 * MiB);
    expect(after.old, change).to.be.below(before.old / 2);
    // V8's initial young generation: 2 × 1 MiB semi-spaces.
    expect(after.young, change).to.be.at.most(2 * MiB);
  });
});
