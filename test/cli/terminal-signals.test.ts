/**
 * The CLI on a real pseudo-terminal (Python's pty module: openpty, a
 * TIOCSWINSZ size, the command as the session leader) against a real agent:
 * a terminal that reports 0 columns (a serial console, `script`, some CI
 * runners) gets no live display, only the outcome line, and bounded output
 * (the spinner once looped there at 100% CPU writing cursor-ups: 410 MB in
 * 10 minutes); SIGTERM and Ctrl-C end every command at once, with the
 * shell's code for the signal, the cursor shown and the terminal's modes
 * as they were.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { distRoot, repoRoot } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

const exec = promisify(execFile);
const PTY_RUN = path.join(repoRoot, 'test/cli/pty-run.py');
const CLI = [process.execPath, path.join(distRoot, 'cli/hyperkern.js')];
/** A whole --wait on a 0-column terminal prints its outcome line; a few KiB is generous. */
const BOUNDED_BYTES = 4096;
/** After the signal, the command is gone within this (generous on a loaded machine; it takes ~50 ms). */
const ENDS_WITHIN_MS = 5000;

interface PtyRun {
  bytes: number;
  tail: string;
  exitCode: number | null;
  signal: number | null;
  killed: boolean;
  ranMs: number;
  afterSignalMs: number | null;
  restored: boolean;
}

/** `hyperkern args` on a COLS-wide pty; `signal` sent after `afterSeconds`; killed after `limitSeconds`. */
async function onPty(cols: number, args: string[], env: Record<string, string>, signal = '-', afterSeconds = 0, limitSeconds = 60): Promise<PtyRun> {
  const { stdout } = await exec('python3', [PTY_RUN, String(cols), '24', String(afterSeconds), signal, String(limitSeconds), '--', ...CLI, ...args], {
    env: { ...process.env, ...env },
    maxBuffer: 1024 * 1024,
    timeout: (limitSeconds + 30) * 1000,
  });
  return JSON.parse(stdout) as PtyRun;
}

/** For assertion messages: the run with the last 300 bytes of its output (a runaway spinner writes megabytes). */
const summary = (run: PtyRun): string => JSON.stringify({ ...run, tail: run.tail.slice(-300) });

describe('CLI: a 0-column terminal, and stop signals', function () {
  this.timeout(120000);
  const agent = suiteAgent(() => ({ config: simulatorConfig({ simulator: { delays: { start: 2000 } } }) }));
  let env: Record<string, string>;

  before(() => {
    // No CLI config file of the machine's user gets in the way; no CI variable switches anything.
    env = { HYPERKERN_URL: agent.url, XDG_CONFIG_HOME: '/nonexistent', CI: '' };
  });

  /** A guest that is off; `startDelayMs` stretches its start job. */
  async function offGuest(startDelayMs?: number): Promise<string> {
    const metadata = startDelayMs ? { 'simulator.delay.start': String(startDelayMs) } : {};
    const res = await agent.request('POST', '/guests?wait=30&start=false', { memory: 64, metadata });
    expect(res.status, res.text).to.equal(200);
    return res.body.id;
  }

  it('0 columns: start --wait prints only its outcome line, no cursor movement; exit 0', async () => {
    const id = await offGuest();
    const run = await onPty(0, ['start', id.slice(0, 8), '--wait'], env);
    expect(run, summary(run)).to.include({ exitCode: 0, killed: false });
    expect(run.tail).to.match(new RegExp(`✔ start ${id.slice(0, 8)} complete in \\d+\\.\\ds \\(guest running\\)`));
    expect(run.bytes, 'bounded output').to.be.below(BOUNDED_BYTES);
    // Cursor up/hide, line erase: the spinner's sequences.
    expect(run.tail, 'no live display').to.not.match(/\x1b\[(\d*A|\?25l|0?K)/);
    expect((await agent.request('GET', `/guests/${id}`)).body.state).to.equal('running');
  });

  it('a terminal shrunk to 0 columns while the spinner runs: the spinner stops, the outcome is plain text; exit 0', async () => {
    const id = await offGuest(4000);
    const run = await onPty(80, ['start', id, '--wait'], { ...env, PTY_RESIZE: '1.5:0' });
    expect(run, summary(run)).to.include({ exitCode: 0, killed: false, restored: true });
    expect(run.tail).to.match(new RegExp(`✔ start ${id.slice(0, 8)} complete in \\d+\\.\\ds \\(guest running\\)`));
    // 1.5 s of spinner at 80 ms a frame, then nothing but the outcome.
    expect(run.bytes, 'bounded output').to.be.below(4 * BOUNDED_BYTES);
    expect(run.tail.lastIndexOf('\x1b[?25h'), 'cursor shown after it was hidden').to.be.above(run.tail.lastIndexOf('\x1b[?25l'));
  });

  it('0 columns: SIGTERM during a long --wait ends it at once (exit 143), output bounded', async () => {
    const id = await offGuest(60000);
    const run = await onPty(0, ['start', id, '--wait'], env, 'TERM', 2);
    expect(run, summary(run)).to.include({ exitCode: 143, killed: false, restored: true });
    expect(run.afterSignalMs!).to.be.below(ENDS_WITHIN_MS);
    expect(run.bytes, 'bounded output').to.be.below(BOUNDED_BYTES);
  });

  it('80 columns: the spinner runs; SIGTERM ends it at once with the cursor shown and the terminal as it was', async () => {
    const id = await offGuest(60000);
    const run = await onPty(80, ['start', id, '--wait'], env, 'TERM', 2);
    expect(run, summary(run)).to.include({ exitCode: 143, killed: false, restored: true });
    expect(run.afterSignalMs!).to.be.below(ENDS_WITHIN_MS);
    expect(run.tail, 'the live line was shown').to.match(/start [0-9a-f]{8}: Running · stage simulator\.start/);
    // The spinner hid the cursor; the last word on it is "show".
    expect(run.tail.lastIndexOf('\x1b[?25h'), 'cursor shown after it was hidden').to.be.above(run.tail.lastIndexOf('\x1b[?25l'));
  });

  it('Ctrl-C (SIGINT) during --wait ends it at once: exit 130', async () => {
    const id = await offGuest(60000);
    const run = await onPty(80, ['start', id, '--wait'], env, 'INT', 2);
    expect(run, summary(run)).to.include({ exitCode: 130, killed: false, restored: true });
    expect(run.afterSignalMs!).to.be.below(ENDS_WITHIN_MS);
  });

  it('SIGTERM ends `events`, which otherwise follows the feed forever', async () => {
    const run = await onPty(0, ['events'], env, 'TERM', 2);
    expect(run, summary(run)).to.include({ exitCode: 143, killed: false, restored: true });
    expect(run.afterSignalMs!).to.be.below(ENDS_WITHIN_MS);
  });
});
