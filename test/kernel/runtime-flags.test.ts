/**
 * The agent's process starts with the Node flags and environment of
 * core/runtime-flags.ts however it is started: `hyperkern serve` (the
 * systemd unit's way, through the CLI's shebang), dist/core/main.js run
 * directly, and `npm start`; and the built files keep the shebangs.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AGENT_ENV, AGENT_NODE_FLAGS, AGENT_SHEBANG } from '../../core/runtime-flags.js';
import { distRoot, repoRoot } from '../support/agent.js';

const firstLine = async (file: string) => (await readFile(file, 'utf8')).split('\n', 1)[0];

describe('runtime flags', () => {
  it('both entry points, built and as sources, open with the shebang that sets them', async () => {
    for (const file of [path.join(repoRoot, 'cli/hyperkern.ts'), path.join(repoRoot, 'core/main.ts'), path.join(distRoot, 'cli/hyperkern.js'), path.join(distRoot, 'core/main.js')]) {
      expect(await firstLine(file), file).to.equal(AGENT_SHEBANG);
    }
  });

  it('npm start sets them', async () => {
    const start = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')).scripts.start as string;
    for (const [name, value] of Object.entries(AGENT_ENV)) expect(start).to.include(`${name}=${value} `);
    for (const flag of AGENT_NODE_FLAGS) expect(start).to.include(` ${flag} `);
    expect(start).to.match(/ dist\/core\/main\.js$/);
  });

  it('the systemd unit starts the agent through the CLI, so the shebang applies', async () => {
    const unit = await readFile(path.join(repoRoot, 'deploy/hyperkern.service'), 'utf8');
    expect(unit).to.match(/^ExecStart=\/usr\/bin\/env hyperkern serve /m);
  });
});
