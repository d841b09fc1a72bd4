/**
 * The CLI prints 8-character ids (`✔ create 5c03da40 complete`) and takes
 * them back: a unique prefix of a guest or job id works wherever an id is
 * taken, as git takes a commit's; an unknown or ambiguous prefix is one
 * clear line (exit 1) and sends nothing that changes anything. A real
 * agent (simulator), the CLI as a child process.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { distRoot } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

const exec = promisify(execFile);
const CLI = path.join(distRoot, 'cli/hyperkern.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('CLI: short ids (unique prefixes)', function () {
  this.timeout(60000);
  const agent = suiteAgent(() => ({ config: simulatorConfig() }));
  // Two guests whose ids share their first 8 characters, and one alone.
  const twinA = 'abcd1234-0000-4000-8000-00000000000a';
  const twinB = 'abcd1234-1111-4000-8000-00000000000b';
  const single = 'f00dcafe-2222-4000-8000-00000000000c';

  async function cli(...args: string[]): Promise<Run> {
    const env = { ...process.env, HYPERKERN_URL: agent.url, XDG_CONFIG_HOME: '/nonexistent' };
    return exec(process.execPath, [CLI, ...args], { env }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
  }

  before(async () => {
    for (const id of [twinA, twinB, single]) {
      const res = await agent.request('POST', '/guests?wait=10&start=false', { id, memory: 64 });
      expect(res.status, res.text).to.equal(200);
    }
  });

  it('takes the 8 characters it printed, for every command that takes a guest id', async () => {
    const short = single.slice(0, 8);
    const created = await cli('guests', 'create', '--memory', '64', '--no-start', '--wait');
    expect(created.code, created.stderr).to.equal(0);
    const printed = /✔ create ([0-9a-f]{8}) complete/.exec(created.stdout)![1];
    expect(JSON.parse((await cli('--json', 'guests', 'get', printed)).stdout).id.startsWith(printed)).to.equal(true);

    expect(JSON.parse((await cli('--json', 'guests', 'get', short)).stdout).id).to.equal(single);
    const started = await cli('start', short, '--wait');
    expect(started.code, started.stderr).to.equal(0);
    expect(started.stdout).to.match(new RegExp(`✔ start ${short} complete .*\\(guest running\\)`));
    expect((await cli('metrics', short, 'cpu')).code).to.equal(0);
    expect((await cli('suspend', short.slice(0, 5), '--wait')).code, 'a shorter unique prefix').to.equal(0);
    expect((await agent.request('GET', `/guests/${single}`)).body.state).to.equal('suspended');
    const jobs = JSON.parse((await cli('--json', 'jobs', 'ls', '--guest', short)).stdout) as Array<{ ID: string; GuestID: string; Action: string }>;
    expect(jobs.map((j) => j.Action)).to.deep.equal(['suspend', 'start', 'create']);
    expect(JSON.parse((await cli('--json', 'jobs', 'get', jobs[0].ID.slice(0, 8))).stdout).ID, 'job ids too').to.equal(jobs[0].ID);
    const removed = await cli('guests', 'rm', printed.toUpperCase(), '--wait');
    expect(removed.code, `${removed.stdout}${removed.stderr}`).to.equal(0);
    expect(removed.stdout).to.match(/complete .*\(guest deleted\)/);
  });

  it('an ambiguous prefix is one line naming the candidates; nothing is sent', async () => {
    const jobsBefore = (await agent.request('GET', '/jobs?limit=1000')).body.length;
    const run = await cli('start', 'abcd1234', '--wait');
    expect(run.code).to.equal(1);
    expect(run.stdout).to.equal('');
    expect(run.stderr).to.equal(
      'hyperkern: guest id prefix "abcd1234" is ambiguous: 2 guests start with it (abcd1234-000, abcd1234-111); give more characters\n',
    );
    expect((await agent.request('GET', '/jobs?limit=1000')).body.length, 'no job queued').to.equal(jobsBefore);
    // One more character decides.
    expect(JSON.parse((await cli('--json', 'guests', 'get', 'abcd1234-1')).stdout).id).to.equal(twinB);
  });

  it('an unknown prefix is one line naming it; a whole unknown id gets the agent\'s 404', async () => {
    const run = await cli('guests', 'rm', '99999');
    expect(run.code).to.equal(1);
    expect(run.stderr).to.equal('hyperkern: no guest with id or id prefix "99999" on this host (hyperkern guests ls lists them)\n');
    expect((await agent.request('GET', '/guests')).body.length, 'nothing deleted').to.equal(3);
    const unknownJob = await cli('jobs', 'get', 'nojob');
    expect(unknownJob.stderr).to.equal('hyperkern: no job with id or id prefix "nojob" on this host (hyperkern jobs ls lists them)\n');
    // A whole UUID that is unknown: the agent's own 404.
    const whole = await cli('guests', 'get', '00000000-0000-4000-8000-000000000000');
    expect(whole.code).to.equal(1);
    expect(whole.stderr).to.match(/no guest with id "00000000-0000-4000-8000-000000000000" on this host \(HTTP 404 HK_ERR_GUEST_NOT_FOUND\)/);
  });
});
