/**
 * The libvirt backend's serial console through the real agent, against a
 * real libvirtd on qemu:///system with the tiny guest under TCG: a viewer
 * attached while the domain is off sees its boot from the first byte to
 * init, types a command into the shell on ttyS0 and reads its output; two
 * viewers see the same bytes; the log route has the boot after a reboot
 * (virtlogd wrote it while nobody was attached) and after an agent restart,
 * when typing reaches the guest again. Its screen is reachable on GET /vnc.
 */
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { openConsole, type ConsoleOpenOptions, type ConsoleViewerClient } from '../support/console-client.js';
import { attemptWebSocket } from '../support/websocket-attempt.js';
import { FIRST_BOOT_MS, recordBoot, underLoad } from '../support/load-budget.js';
import { LibvirtWorld } from './world.js';

describe('libvirt serial console on qemu:///system (real libvirtd, tiny guest under TCG)', function () {
  this.timeout(900000); // bounded by the waits below, which scale with the measured load
  let world: LibvirtWorld;
  let agent: RunningAgent | undefined;
  let dataDir: string | undefined;
  const opened: ConsoleViewerClient[] = [];

  before(async function () {
    this.timeout(300000);
    world = await LibvirtWorld.create();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((v) => v.close()));
  });
  after(async function () {
    this.timeout(600000);
    await agent?.stop();
    const left = world ? await world.domains() : [];
    await world?.dispose();
    if (dataDir) await Promise.all([removeDir(dataDir), rm(`${dataDir}.config.json`, { force: true })]);
    expect(left, 'domains the test left behind').to.deep.equal([]);
  });

  async function start(): Promise<RunningAgent> {
    // The first connection to a fresh libvirtd probes QEMU's capabilities (seconds).
    agent = await startAgent({ config: { ...world.config(), logLevel: 'info' }, dataDir, startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
    dataDir = agent.dataDir;
    return agent;
  }
  async function view(a: RunningAgent, id: string, onOpen?: ConsoleOpenOptions['onOpen']): Promise<ConsoleViewerClient> {
    const viewer = await openConsole(a.url, id, { onOpen });
    opened.push(viewer);
    return viewer;
  }
  async function act(a: RunningAgent, id: string, action: string): Promise<void> {
    const res = await a.request('POST', `/guests/${id}/${action}?wait=120`);
    expect(res.status, `${action}: ${res.text}`).to.equal(200);
    expect(res.headers.get('x-guest-job-status'), `${action} job`).to.equal('Complete');
  }
  async function consoleLog(a: RunningAgent, id: string): Promise<string> {
    const res = await a.request('GET', `/guests/${id}/console/log?bytes=1048576`);
    expect(res.status, res.text).to.equal(200);
    return res.text;
  }
  const count = (text: string, needle: string) => text.split(needle).length - 1;
  /** A command typed into the guest's shell on ttyS0, and the line it prints. */
  async function shellRoundTrip(viewer: ConsoleViewerClient, tag: string): Promise<void> {
    const mark = viewer.received().length;
    viewer.type(`echo ${tag}-$((6*7))\r`);
    await viewer.waitFor(new RegExp(`${tag}-42`), underLoad(20000), mark);
  }

  it('shows the boot from the first byte to init to a viewer attached while off, and runs a command in the shell', async () => {
    const a = await start();
    const res = await a.request('POST', '/guests?wait=60&start=false', { memory: 128, cpu: 1, disks: [{ size: 64 }], metadata: world.tinyBoot });
    expect(res.status, res.text).to.equal(200);
    const id = res.body.id as string;
    const first = await view(a, id);
    const second = await view(a, id);
    expect(first.received().length, 'an off guest prints nothing').to.equal(0);
    const t0 = Date.now();
    await act(a, id, 'start');
    await first.waitFor(new RegExp(INIT_REACHED), Math.max(underLoad(60000), FIRST_BOOT_MS));
    recordBoot(Date.now() - t0);
    // From the first byte: what the viewer got up to init is the log's whole beginning (the guest never ran before).
    const boot = first.received().toString('latin1');
    const kept = await consoleLog(a, id);
    expect(boot.slice(0, boot.indexOf(INIT_REACHED)), 'the viewer missed nothing of the boot').to.equal(kept.slice(0, kept.indexOf(INIT_REACHED)));
    await shellRoundTrip(first, 'first');
    await second.waitFor(/first-42/, underLoad(10000));
    const common = Math.min(first.received().length, second.received().length);
    expect(second.received().subarray(0, common).equals(first.received().subarray(0, common)), 'two viewers see the same bytes').to.equal(true);
    const log = await consoleLog(a, id);
    expect(log, 'the log holds what the viewers saw').to.include(INIT_REACHED).and.include('first-42');

    // The domain's VNC (vnc: true in the world's options) through GET /vnc: libvirt.vnc found it.
    const screen = await attemptWebSocket(`${a.url}/guests/${id}/vnc`, { protocols: ['binary'] });
    if (!screen.upgraded) expect.fail(`no VNC upgrade: ${screen.status} ${JSON.stringify(screen.body)}`);
    expect((await screen.messages.next(underLoad(10000))).data.toString('latin1')).to.equal('RFB 003.008\n');
    screen.ws.terminate();

    // Nobody attached: the reboot's output is kept by the log all the same.
    await first.close();
    await second.close();
    opened.splice(0);
    await act(a, id, 'reboot');
    const deadline = Date.now() + underLoad(60000);
    while (count(await consoleLog(a, id), INIT_REACHED) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    expect(count(await consoleLog(a, id), INIT_REACHED), 'the log has the boot after the reboot').to.equal(2);

    // The agent restarts; the guest runs on. The log is still there, and typing reaches the guest.
    await a.stop();
    const b = await start();
    expect(count(await consoleLog(b, id), INIT_REACHED), 'the log after an agent restart').to.equal(2);
    const again = await view(b, id, (ws) => ws.send(Buffer.from('echo typed-at-open-$((6*7))\r')));
    await again.waitFor(/typed-at-open-42/, underLoad(20000));
    await shellRoundTrip(again, 'after-restart');

    await again.close();
    const removed = await b.request('DELETE', `/guests/${id}?wait=120`);
    expect(removed.status, removed.text).to.equal(200);
  });
});
