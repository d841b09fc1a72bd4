/**
 * A container's console (plugins/lxc/container-console*.ts) on real LXC
 * containers this test starts, without an agent: the console opened while
 * the container is stopped shows its init's greeting from the first byte
 * of the boot (followed from LXC's own log), typed input reaches the shell
 * on /dev/console and its answer comes back, a typed Ctrl-a arrives as one
 * (lxc-console's escape is doubled), the log is read across LXC's rotation
 * (console.log.1 then console.log), and a console let go of (an agent gone)
 * frees LXC's one console client so the next one types again.
 */
import { expect } from 'chai';
import { readFile, stat } from 'node:fs/promises';
import type { GuestConsole, Logger } from '../../core/contract/index.js';
import type { Guest } from '../../core/contract/wire-types.js';
import { consoleConfigLines, ContainerConsoles, type ConsolePlace } from '../../plugins/lxc/container-console.js';
import { escapeCtrlA } from '../../plugins/lxc/container-console-input.js';
import { waitFor } from '../support/agent.js';
import { LxcFixture, type TestContainer } from './snapshots-console-fixture.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

function collect(console: GuestConsole): { text: () => string; waitFor: (pattern: RegExp, from?: number) => Promise<void> } {
  const chunks: Buffer[] = [];
  console.output.on('data', (chunk: Buffer) => chunks.push(chunk));
  const text = () => Buffer.concat(chunks).toString('latin1');
  const wait = async (pattern: RegExp, from = 0) => {
    await waitFor(async () => pattern.test(text().slice(from)), 30_000, `${pattern} on the console (${JSON.stringify(text().slice(-300))} so far)`);
  };
  return { text, waitFor: wait };
}

describe('container console on LXC (log followed, lxc-console for input)', function () {
  this.timeout(120_000);
  let lxc: LxcFixture;
  const places = new Map<string, ConsolePlace>();
  const guestOf = (c: TestContainer) => ({ id: `guest-${c.name}`, type: 'container' }) as Guest;
  let consoles: ContainerConsoles;
  /** The rotation test's bound: small, so a burst of output crosses it several times. */
  const LOG_BYTES = 4096;

  before(async () => {
    lxc = await LxcFixture.make('hk-ctcons-');
    consoles = new ContainerConsoles('lxc-console', (id) => places.get(id)!, LOG_BYTES, silent);
  });
  after(async () => {
    consoles?.closeAll();
    await lxc?.cleanup();
  });

  async function container(): Promise<TestContainer> {
    const probe = await lxc.container();
    const place = { name: probe.name, lxcPath: lxc.lxcPath, logFile: probe.logFile };
    places.set(`guest-${probe.name}`, place);
    const { writeFile } = await import('node:fs/promises');
    const config = await readFile(`${probe.dir}/config`, 'utf8');
    await writeFile(`${probe.dir}/config`, config + consoleConfigLines(place).join('\n') + '\n');
    return probe;
  }

  it('shows the boot from its first byte to a viewer who came first, takes typed input and answers, Ctrl-a included', async () => {
    const c = await container();
    const viewer = await consoles.open({ guest: guestOf(c), purpose: 'view', args: {} });
    const seen = collect(viewer);
    await lxc.start(c);
    consoles.started(guestOf(c).id, 'test: started');
    await seen.waitFor(/hello from init 1\r?\n/);
    await seen.waitFor(/# /);

    const from = seen.text().length;
    viewer.write(Buffer.from('echo answer-$((6*7))\r'));
    await seen.waitFor(/answer-42/, from);

    // A literal Ctrl-a reaches the shell's read as one byte (0x01), not lxc-console's escape.
    const at = seen.text().length;
    viewer.write(Buffer.from('read x; printf %s "$x" | od -An -tx1\r'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    viewer.write(Buffer.from([0x01, 0x71, 0x0d]));
    await seen.waitFor(/01 71/, at);

    const log = (await viewer.readLog(65536)).toString('latin1');
    expect(log).to.match(/hello from init 1/);
    expect(log).to.match(/answer-42/);
    viewer.close();
    await lxc.stop(c);
  });

  it('lets go of LXC\'s one console client when closed, so a later console types again while the container runs on', async () => {
    const c = await container();
    await lxc.start(c);
    await lxc.waitForLog(c, /# /);
    const first = await consoles.open({ guest: guestOf(c), purpose: 'view', args: {} });
    const one = collect(first);
    first.write(Buffer.from('echo first-$((1+1))\r'));
    await one.waitFor(/first-2/);
    first.close();

    const second = await consoles.open({ guest: guestOf(c), purpose: 'view', args: {} });
    const two = collect(second);
    await waitFor(async () => {
      second.write(Buffer.from('echo second-$((2+1))\r'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      return /second-3/.test(two.text());
    }, 20_000, 'the second console to type');
    expect(await lxc.state(c)).to.equal('RUNNING');
    second.close();
    await lxc.stop(c);
  });

  it('rotates the log past its bound while a viewer watches: every line seen once, in order; the log read across console.log.1 and console.log', async () => {
    const c = await container();
    const viewer = await consoles.open({ guest: guestOf(c), purpose: 'view', args: {} });
    const seen = collect(viewer);
    await lxc.start(c);
    consoles.started(guestOf(c).id, 'test: started');
    await seen.waitFor(/# /);
    viewer.write(Buffer.from('i=0; while [ $i -lt 150 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; echo all-done\r'));
    await seen.waitFor(/\nall-done\r?\n/);
    await consoles.sweep([guestOf(c).id]);
    // The last LOG_BYTES, plus what LXC appended while the rotation copied them (carried over, never lost).
    expect((await stat(`${c.logFile}.1`)).size, 'console.log.1 keeps at least the last LOG_BYTES').to.be.at.least(LOG_BYTES);
    expect((await stat(c.logFile)).size).to.be.at.most(LOG_BYTES);
    // Every line reached the viewer in order, across the rotation.
    const lines = [...seen.text().matchAll(/line-(\d+)-x+\r?\n/g)].map((m) => Number(m[1]));
    expect(lines).to.deep.equal(Array.from({ length: 150 }, (_, i) => i));
    const log = (await viewer.readLog(8192)).toString('latin1');
    expect(log).to.match(/all-done/);
    expect(log.length).to.be.greaterThan((await stat(c.logFile)).size, 'the tail reaches into console.log.1');
    viewer.close();
    await lxc.stop(c);
  });

  it('doubles each Ctrl-a for lxc-console and leaves other bytes alone', () => {
    expect(escapeCtrlA(Buffer.from('plain'))).to.deep.equal(Buffer.from('plain'));
    expect(escapeCtrlA(Buffer.from([0x61, 0x01, 0x71, 0x01]))).to.deep.equal(Buffer.from([0x61, 0x01, 0x01, 0x71, 0x01, 0x01]));
  });
});
