/**
 * The console of a real guest: the tiny guest on QEMU under TCG, through a
 * real agent process (config/qemu.json). Viewers attach while the guest is
 * off and see its boot from the first byte QEMU logged; a command typed into
 * the shell on ttyS0 answers; two viewers see the same bytes; bytes typed in
 * the open's own tick arrive; the log has the boot after a reboot and after
 * an agent restart (QEMU kept running, and what the guest printed while no
 * agent ran is there).
 */
import { expect } from 'chai';
import { startAgent, type RunningAgent } from '../support/agent.js';
import { tcgQemuConfig } from '../support/configs.js';
import { CONSOLE_PROMPT, INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { openConsole, type ConsoleOpenOptions, type ConsoleViewerClient } from '../support/console-client.js';
import { disposeQemuTestAgent } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';
import { FIRST_BOOT_MS, recordBoot, underLoad } from '../support/load-budget.js';

/** The shell's prompt at the end of the output (busybox then asks the terminal where its cursor is: ESC [6n). */
const PROMPT_AT_END = new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`);


describe('console: the tiny guest on QEMU (TCG) over WebSocket', function () {
  this.timeout(900_000); // bounded by the waits below, scaled to the measured load
  let world: QemuWorld;
  let agent: RunningAgent | undefined;
  const viewers: ConsoleViewerClient[] = [];

  before(async function () {
    this.timeout(600_000);
    world = await QemuWorld.create();
  });
  after(async () => {
    await Promise.all(viewers.map((v) => v.close()));
    await disposeQemuTestAgent(agent);
    await world?.dispose();
  });

  const view = async (id: string, onOpen?: ConsoleOpenOptions['onOpen']) => {
    const viewer = await openConsole(agent!.url, id, { onOpen });
    viewers.push(viewer);
    return viewer;
  };
  const logOf = async (id: string) => Buffer.from(await (await fetch(`${agent!.url}/guests/${id}/console/log?bytes=1048576`)).arrayBuffer());

  it('boots, takes commands, reboots and survives an agent restart with its log', async () => {
    agent = await startAgent({ config: tcgQemuConfig(world.imagesDir), env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const created = await agent.request('POST', '/guests?wait=60&start=false', { memory: 256, cpu: 1, disks: [{ size: 16 }], metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    const id = (created.body as { id: string }).id;

    // Attached while the guest is off: nothing yet, then the whole boot.
    const first = await view(id);
    const second = await view(id);
    expect(first.received().length).to.equal(0);
    const t0 = Date.now();
    const started = await agent.request('POST', `/guests/${id}/start?wait=120`);
    expect(started.status, started.text).to.equal(200);
    await first.waitFor(new RegExp(INIT_REACHED), FIRST_BOOT_MS);
    recordBoot(Date.now() - t0);
    await first.waitFor(PROMPT_AT_END, underLoad(30_000));
    const seen = first.received();
    const logged = await logOf(id);
    expect(logged.length, 'QEMU logged the boot').to.be.at.least(seen.length);
    expect(logged.subarray(0, seen.length).equals(seen), 'the viewer saw every byte from the first one QEMU logged').to.equal(true);
    console.log(`      boot seen on the console: ${seen.length} bytes, start to prompt ${Date.now() - t0} ms`);

    // A command on the console's shell; both viewers see the same bytes.
    let mark = first.received().length;
    first.type('echo console-$((6*7))\r');
    const answered = new RegExp(`console-42\\r\\n${PROMPT_AT_END.source}`);
    await first.waitFor(answered, underLoad(20_000), mark);
    await second.waitFor(answered, underLoad(20_000), mark);
    expect(first.received().equals(second.received()), 'two viewers, the same bytes').to.equal(true);

    // Typed in the very tick the WebSocket opens: not lost.
    const third = await view(id, (ws) => ws.send(Buffer.from('echo tick-$((1+1))\r')));
    await third.waitFor(/tick-2\r\n/, underLoad(20_000));

    // A reboot: the viewer sees the second boot, the log has both.
    mark = first.received().length;
    const rebooted = await agent.request('POST', `/guests/${id}/reboot?wait=120`);
    expect(rebooted.status, rebooted.text).to.equal(200);
    await first.waitFor(new RegExp(INIT_REACHED), underLoad(60_000), mark);
    await first.waitFor(PROMPT_AT_END, underLoad(30_000), mark);
    const afterReboot = (await logOf(id)).toString('latin1');
    expect(afterReboot.split(INIT_REACHED).length - 1, 'two boots in the log').to.equal(2);

    // The agent stops (QEMU runs on); what the guest prints meanwhile is kept by QEMU's log.
    mark = first.received().length;
    first.type('(sleep 4; echo while-down-$((7*6))) &\r');
    await first.waitFor(PROMPT_AT_END, underLoad(20_000), mark);
    const dataDir = agent.dataDir;
    await agent.stop();
    const closed = await Promise.race([first.closed, new Promise<undefined>((r) => setTimeout(r, 10_000))]);
    expect(closed?.code, 'viewers are told the agent stops').to.equal(1001);
    await new Promise((r) => setTimeout(r, underLoad(6000)));
    agent = await startAgent({ config: tcgQemuConfig(world.imagesDir), dataDir, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    expect((await agent.request('GET', `/guests/${id}`)).body).to.include({ state: 'running' });
    const restarted = (await logOf(id)).toString('latin1');
    expect(restarted, 'printed while no agent ran').to.include('while-down-42');
    expect(restarted.split(INIT_REACHED).length - 1, 'both boots still in the log').to.equal(2);
    // The restarted agent holds the console again: a new viewer types and reads.
    const fourth = await view(id);
    fourth.type('echo after-restart-$((2+3))\r');
    await fourth.waitFor(/after-restart-5\r\n/, underLoad(20_000));

    const deleted = await agent.request('DELETE', `/guests/${id}?wait=120`);
    expect(deleted.status, deleted.text).to.equal(200);
    const ended = await Promise.race([fourth.closed, new Promise<undefined>((r) => setTimeout(r, 10_000))]);
    expect(ended?.code, 'a deleted guest ends its console').to.equal(1001);
  });
});
