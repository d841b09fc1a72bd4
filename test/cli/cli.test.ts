/**
 * The `hyperkern` CLI in a real terminal (tmux) against a real agent
 * (simulator backend, auth on): the --wait display shows the job while it
 * runs and ends with the outcome line and exit code; errors are the agent's
 * message, never a stack; --json is JSON.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { distRoot, makeTempDir, removeDir } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { Terminal } from './terminal.js';

const TOKEN = 'cli-test-token-0123456789abcdef';
const CLI = `${process.execPath} ${path.join(distRoot, 'cli/hyperkern.js')}`;
const auth = { authorization: `Bearer ${TOKEN}` };
const NO_STACK = /\bat .+:\d+:\d+|node_modules|\.js:\d+/;
const exec = promisify(execFile);

describe('CLI: hyperkern in a terminal', function () {
  // Each case waits for jobs the simulator stretches to ~2 s; generous for a loaded machine.
  this.timeout(120000);
  // The CLI is the child process here; the agent it talks to runs in-process.
  const agent = suiteAgent(() => ({
    config: simulatorConfig({
      auth: { tokens: [TOKEN] },
      simulator: { delays: { create: 2000, start: 2000, suspend: 8000 }, failures: { reboot: 'simulated reboot failure' } },
    }),
  }));
  let terminal: Terminal;
  let env: Record<string, string>;

  before(async () => {
    // No CLI config file of the machine's user gets in the way.
    env = { HYPERKERN_URL: agent.url, HYPERKERN_TOKEN: TOKEN, XDG_CONFIG_HOME: '/nonexistent' };
    terminal = new Terminal();
  });
  after(async () => {
    await terminal?.close();
  });

  async function newGuest(): Promise<string> {
    const res = await agent.request('POST', '/guests?wait=30&start=false', { memory: 64, disks: [{ size: 8 }] }, auth);
    expect(res.status, res.text).to.equal(200);
    return res.body.id;
  }

  it('guests create --wait shows the running job, then the outcome; exit 0', async () => {
    const session = await terminal.run(`${CLI} guests create --memory 96 --cpu 2 --disk 16 --nic '' --metadata owner=cli --wait`, env);
    const screens = await terminal.watch(session, /EXIT=\d+/, 60000);
    const last = screens[screens.length - 1];
    expect(screens.some((s) => /create [0-9a-f]{8}: Running · stage simulator\.create · guest creating · \d+\.\ds/.test(s)), `a live line with the stage while it ran:\n${screens.join('\n---\n')}`).to.equal(true);
    // Create boots the guest unless --no-start.
    expect(last).to.match(/✔ create [0-9a-f]{8} complete in \d+\.\ds \(guest running\)/);
    expect(last).to.match(/EXIT=0/);
    const guests = (await agent.request('GET', '/guests', undefined, auth)).body;
    expect(guests.some((g: any) => g.metadata?.owner === 'cli' && g.cpu === 2 && g.memory === 96 && g.disks[0].size === 16)).to.equal(true);
  });

  it('start --wait shows the job, ends "complete" with the guest running; exit 0', async () => {
    const id = await newGuest();
    const session = await terminal.run(`${CLI} start ${id} --wait`, env);
    const screens = await terminal.watch(session, /EXIT=\d+/, 60000);
    expect(screens.some((s) => new RegExp(`start ${id.slice(0, 8)}: Running · stage simulator\\.start · guest off`).test(s)), screens.join('\n---\n')).to.equal(true);
    expect(screens[screens.length - 1]).to.match(new RegExp(`✔ start ${id.slice(0, 8)} complete in .*\\(guest running\\)[\\s\\S]*EXIT=0`));
    expect((await agent.request('GET', `/guests/${id}`, undefined, auth)).body.state).to.equal('running');
  });

  it('a failing action ends with the job message; exit 1', async () => {
    const session0 = await terminal.run(`${CLI} guests create --memory 64 --disk 8 --no-start --wait`, env);
    const created = (await terminal.watch(session0, /EXIT=\d+/, 60000)).pop()!;
    expect(created, '--no-start leaves it off').to.match(/✔ create [0-9a-f]{8} complete in .*\(guest off\)[\s\S]*EXIT=0/);
    const id = await newGuest();
    await agent.request('POST', `/guests/${id}/start?wait=30`, undefined, auth);
    const session = await terminal.run(`${CLI} reboot ${id} --wait`, env);
    const screen = (await terminal.watch(session, /EXIT=\d+/, 60000)).pop()!;
    expect(screen).to.match(new RegExp(`✖ reboot ${id.slice(0, 8)} failed after \\d+\\.\\ds: .*simulated reboot failure`));
    expect(screen).to.match(/EXIT=1/);
    expect(screen).to.not.match(NO_STACK);
  });

  it('--wait that runs out of time says so and exits 3; the job goes on', async () => {
    const id = await newGuest();
    await agent.request('POST', `/guests/${id}/start?wait=30`, undefined, auth);
    const session = await terminal.run(`${CLI} suspend ${id} --wait --timeout 1`, env);
    const screen = (await terminal.watch(session, /EXIT=\d+/, 60000)).pop()!;
    expect(screen).to.match(new RegExp(`suspend ${id.slice(0, 8)} still (Queued|Running) after 1s; job [0-9a-f-]{36} goes on`));
    expect(screen).to.match(/EXIT=3/);
  });

  it("a refused request prints the agent's message on one line, no stack; exit 1", async () => {
    const session = await terminal.run(`${CLI} start 00000000-0000-4000-8000-000000000000`, env);
    const screen = (await terminal.watch(session, /EXIT=\d+/, 30000)).pop()!;
    expect(screen).to.match(/hyperkern: no guest with id "00000000-0000-4000-8000-000000000000" on this host \(HTTP 404 HK_ERR_GUEST_NOT_FOUND\)/);
    expect(screen).to.match(/EXIT=1/);
    expect(screen).to.not.match(NO_STACK);
    const noToken = await terminal.run(`${CLI} guests ls`, { HYPERKERN_URL: agent.url });
    expect((await terminal.watch(noToken, /EXIT=\d+/, 30000)).pop()).to.match(/authentication required[\s\S]*EXIT=1/);
  });

  it('reads url and token from the CLI config file', async () => {
    const dir = await makeTempDir('hyperkern-cli-config-');
    try {
      const file = path.join(dir, 'cli.json');
      await writeFile(file, JSON.stringify({ url: agent.url, token: TOKEN }));
      const { stdout } = await exec(process.execPath, [path.join(distRoot, 'cli/hyperkern.js'), '--json', 'jobs', 'ls', '--limit', '1'], {
        env: { PATH: process.env.PATH, HYPERKERN_CLI_CONFIG: file },
      });
      expect(JSON.parse(stdout)).to.have.length(1);
      await writeFile(file, JSON.stringify({ url: agent.url, tokn: TOKEN }));
      const broken = await exec(process.execPath, [path.join(distRoot, 'cli/hyperkern.js'), 'jobs', 'ls'], { env: { PATH: process.env.PATH, HYPERKERN_CLI_CONFIG: file } }).catch((e) => e);
      expect(broken.code).to.equal(1);
      expect(broken.stderr).to.match(/^hyperkern: CLI config .*cli\.json: .*tokn/);
    } finally {
      await removeDir(dir);
    }
  });

  it('--json gives scripts JSON, and tables list what the agent has', async () => {
    const id = await newGuest();
    const { stdout: listed } = await exec(process.execPath, [path.join(distRoot, 'cli/hyperkern.js'), '--json', 'guests', 'ls'], { env: { ...process.env, ...env } });
    expect(JSON.parse(listed).map((g: any) => g.id)).to.include(id);
    const { stdout: waited } = await exec(process.execPath, [path.join(distRoot, 'cli/hyperkern.js'), '--json', 'start', id, '--wait'], { env: { ...process.env, ...env } });
    expect(JSON.parse(waited)).to.deep.include({ outcome: 'complete' });
    const { stdout: metrics } = await exec(process.execPath, [path.join(distRoot, 'cli/hyperkern.js'), '--json', 'metrics', id, 'cpu'], { env: { ...process.env, ...env } });
    expect(JSON.parse(metrics)[0]).to.have.keys(['cpu_time', 'vcpu_time']);
    const { stdout: table } = await exec(process.execPath, [path.join(distRoot, 'cli/hyperkern.js'), 'jobs', 'ls', '--guest', id], { env: { ...process.env, ...env } });
    expect(table.split('\n')[0]).to.match(/^ID +GUEST +ACTION +STATUS +UPDATED +MESSAGE$/);
    expect(table).to.match(new RegExp(`${id} +start +Complete`));
    const { stdout: events } = await exec(process.execPath, [path.join(distRoot, 'cli/hyperkern.js'), 'events', '--since', '0', '--guest', id, '--count', '2'], { env: { ...process.env, ...env } });
    expect(events.trim().split('\n')).to.have.length(2);
    expect(events).to.match(/guest\.created/);
  });
});
