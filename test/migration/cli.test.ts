/**
 * `hyperkern migrate` moving the tiny guest between two real QEMU agents
 * (TCG) that are hosts of a fleet on a real etcd: by host id with the live
 * display in a terminal (tmux), back by URL on a 0-column terminal, and
 * once more with Ctrl-C while watching (the CLI stops watching, says so,
 * and the move goes on to its end). After each move etcd shows the guest
 * under its new host only; both agents wrote guest.migrating and
 * guest.migrated and count the move on /metrics.
 */
import { tcgQemuConfig } from '../support/configs.js';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { CONSOLE_PROMPT, INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { distRoot, repoRoot, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { openConsole } from '../support/console-client.js';
import { startEtcd, type EtcdServer } from '../support/etcd-server.js';
import { FIRST_BOOT_MS, underLoad } from '../support/load-budget.js';
import { sqliteQuery } from '../support/sqlite-query.js';
import { STATE_FILE } from '../../core/state/state-store.js';
import { disposeQemuTestAgent } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';
import { Terminal } from '../cli/terminal.js';
import { etcdClient, testPrefix } from '../fleet/world.js';

const exec = promisify(execFile);
const CLI = [process.execPath, path.join(distRoot, 'cli/hyperkern.js')];
const PTY_RUN = path.join(repoRoot, 'test/cli/pty-run.py');

interface PtyRun {
  tail: string;
  exitCode: number | null;
  killed: boolean;
}

describe('CLI: hyperkern migrate between two fleet hosts (QEMU, TCG, etcd)', function () {
  this.timeout(900_000);
  let etcd: EtcdServer;
  let client: Etcd3;
  let world: QemuWorld;
  let a: RunningAgent;
  let b: RunningAgent;
  let terminal: Terminal;
  const prefix = testPrefix();
  let id = '';

  const fleetConfig = (hostId: string) => {
    const config = tcgQemuConfig(world.imagesDir) as { plugins: object[] };
    config.plugins.push({ module: 'fleet', options: { etcd: { endpoints: [etcd.endpoint], prefix, leaseTtlSeconds: 4, callTimeoutMs: 2000 }, hostId, capacity: { cpus: 16, memoryMiB: 32768 } } });
    return config;
  };

  before(async function () {
    this.timeout(600_000);
    etcd = await startEtcd();
    client = etcdClient(etcd.endpoint);
    world = await QemuWorld.create();
    const env = { HYPERKERN_QEMU_ACCEL: 'tcg' };
    [a, b] = await Promise.all([startAgent({ config: fleetConfig('host-a'), env }), startAgent({ config: fleetConfig('host-b'), env })]);
    terminal = new Terminal();
    const created = await a.request('POST', '/guests?wait=300', { memory: 128, cpu: 1, disks: [{ size: 16 }], metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    id = created.body.id;
    const viewer = await openConsole(a.url, id);
    try {
      await viewer.waitFor(new RegExp(INIT_REACHED), FIRST_BOOT_MS);
      await viewer.waitFor(new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`), underLoad(60_000));
      viewer.type('i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done &\r');
      await viewer.waitFor(/tick 3\r\n/, underLoad(30_000));
    } finally {
      await viewer.close();
    }
  });

  after(async () => {
    await terminal?.close();
    await Promise.all([disposeQemuTestAgent(a), disposeQemuTestAgent(b)]);
    client?.close();
    await etcd?.dispose();
    await world?.dispose();
  });

  const env = (agent: RunningAgent) => ({ HYPERKERN_URL: agent.url, XDG_CONFIG_HOME: '/nonexistent', CI: '' });
  const onPty = async (cols: number, args: string[], agent: RunningAgent, signal = '-', afterSeconds = 0): Promise<PtyRun> => {
    const { stdout } = await exec('python3', [PTY_RUN, String(cols), '24', String(afterSeconds), signal, '600', '--', ...CLI, ...args], {
      env: { ...process.env, ...env(agent) },
      maxBuffer: 1024 * 1024,
      timeout: 700_000,
    });
    return JSON.parse(stdout) as PtyRun;
  };

  /** etcd holds the guest under `host` only. */
  const underHost = (host: string, other: string) =>
    waitFor(
      async () => (await client.get(`${prefix}/guests/${host}/${id}`).string()) !== null && (await client.get(`${prefix}/guests/${other}/${id}`).string()) === null,
      underLoad(20_000),
      `etcd to show the guest under ${host} only`,
    );

  const migrationEvents = async (agent: RunningAgent) =>
    (await sqliteQuery<{ type: string; body: string }>(path.join(agent.dataDir, STATE_FILE), `SELECT type, body FROM events WHERE guest = '${id}' AND type LIKE 'guest.%' ORDER BY id`)).map((e) => ({ type: e.type, data: JSON.parse(e.body).data }));

  it('moves the guest to a fleet host by id, with its phase and bytes on the live line; etcd, events and /metrics follow', async () => {
    // 8 MiB/s: the copy lasts long enough for the terminal to be read while it runs.
    const session = await terminal.run(`${CLI.join(' ')} migrate ${id.slice(0, 8)} --host host-b --wait --bandwidth 8`, env(a));
    const screens = await terminal.watch(session, /EXIT=\d+/, underLoad(300_000));
    const last = screens[screens.length - 1];
    expect(screens.some((s) => new RegExp(`migrate ${id.slice(0, 8)}: Running · phase (preparing|disks|memory)`).test(s)), `the phase while it ran:\n${screens.join('\n---\n')}`).to.equal(true);
    expect(screens.some((s) => /phase (disks|memory) · \[[#-]{24}\] [\d.]+ MiB of [\d.]+ MiB \(\d+%\), [\d.]+ MiB left/.test(s)), `bytes sent and left while it copied:\n${screens.join('\n---\n')}`).to.equal(true);
    expect(last).to.match(new RegExp(`✔ migrate ${id.slice(0, 8)} complete in \\d+\\.\\ds \\(moved live to ${b.url.replace(/[.]/g, '\\.')}`));
    expect(last).to.match(/EXIT=0/);
    expect((await b.request('GET', `/guests/${id}`)).body.state).to.equal('running');
    const gone = await a.request('GET', `/guests/${id}`);
    expect(gone.status).to.equal(404);
    expect(gone.body.movedTo).to.include({ hostId: 'host-b', url: b.url });
    expect(gone.headers.get('location')).to.equal(`${b.url}/guests/${id}`);
    await underHost('host-b', 'host-a');

    const onA = await migrationEvents(a);
    const migrating = onA.find((e) => e.type === 'guest.migrating');
    expect(migrating?.data).to.deep.include({ role: 'source', source: a.url, target: b.url, targetHost: 'host-b', live: true });
    const tail = onA.slice(-2).map((e) => e.type);
    expect(tail, 'the source: the guest removed and the move reported in one transaction').to.deep.equal(['guest.deleted', 'guest.migrated']);
    const migrated = onA.at(-1)!.data;
    expect(migrated).to.deep.include({ role: 'source', target: b.url, targetHost: 'host-b', live: true });
    expect(migrated.seconds).to.be.a('number').and.above(0);
    expect(migrated.downtimeMs).to.be.a('number');
    expect(migrated.bytes.memory).to.be.above(0);
    const onB = (await migrationEvents(b)).map((e) => e.type);
    const at = ['guest.migrating', 'guest.created', 'guest.migrated'].map((type) => onB.indexOf(type));
    expect(at.every((i, n) => i >= 0 && (n === 0 || i > at[n - 1])), `the target: migrating, then the guest registered, then migrated: ${onB.join(', ')}`).to.equal(true);

    const metricsA = (await a.request('GET', '/metrics')).text;
    expect(metricsA).to.contain('hyperkern_migrations_total{role="source",outcome="complete"} 1');
    expect(metricsA).to.match(/hyperkern_migration_bytes_sent_total\{kind="memory"\} [1-9]\d*/);
    expect(metricsA).to.contain('hyperkern_migration_downtime_seconds_count 1');
    expect((await b.request('GET', '/metrics')).text).to.contain('hyperkern_migrations_total{role="target",outcome="complete"} 1');
  });

  it('moves it back by URL on a 0-column terminal: only the outcome line, no cursor movement', async () => {
    const run = await onPty(0, ['migrate', id, '--target-url', a.url, '--wait'], b);
    expect(run, JSON.stringify(run)).to.include({ exitCode: 0, killed: false });
    expect(run.tail).to.match(new RegExp(`✔ migrate ${id.slice(0, 8)} complete in \\d+\\.\\ds \\(moved live`));
    expect(run.tail, 'no live display').to.not.match(/\x1b\[(\d*A|\?25l|0?K)/);
    expect((await a.request('GET', `/guests/${id}`)).body.state).to.equal('running');
    await underHost('host-a', 'host-b');
  });

  it('Ctrl-C while watching only stops watching: exit 130, a line saying the move goes on, and it does', async () => {
    // 4 MiB/s: the RAM copy outlasts the 3 s before the Ctrl-C.
    const run = await onPty(80, ['migrate', id, '--host', 'host-b', '--wait', '--bandwidth', '4'], a, 'INT', 3);
    expect(run, JSON.stringify(run)).to.include({ exitCode: 130, killed: false });
    const note = /stopped watching; the move goes on \(hyperkern jobs get ([0-9a-f-]{36}) follows it, hyperkern jobs cancel \1 cancels it\)/.exec(run.tail);
    expect(note, run.tail).to.not.equal(null);
    const job = await waitFor(
      async () => {
        const j = (await a.request('GET', `/jobs/${note![1]}`)).body;
        return j.Status === 'Complete' || j.Status === 'Error' ? j : undefined;
      },
      underLoad(300_000),
      'the move to end after the CLI stopped watching',
    );
    expect(job.Status, job.Message).to.equal('Complete');
    expect((await b.request('GET', `/guests/${id}`)).body.state).to.equal('running');
    await underHost('host-b', 'host-a');
  });
});
