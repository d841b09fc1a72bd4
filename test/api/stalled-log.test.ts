/**
 * Logging can never stall the agent: a real agent process whose stdout pipe
 * nobody reads keeps answering, drops and counts the lines it cannot write,
 * and exits on SIGTERM within its grace period plus a few seconds, also with
 * a job still running, and when the reader went away (EPIPE, as in
 * `agent | head -1`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { distRoot, makeTempDir, removeDir, repoRoot, waitFor } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';
import { freePort } from '../support/free-port.js';
import { underLoad } from '../support/load-budget.js';
import { LOG_BUFFER_BYTES } from '../../core/logger.js';

const GRACE_SECONDS = 2;
// The agent's own stop budget: grace, 2 s for open requests, 3 s margin
// (core/kernel.ts, core/main.ts). Exit must come within it plus slack for a
// loaded machine. The tests wait twice that long before giving up, so that
// the bound itself is what they check.
const EXIT_BOUND_MS = GRACE_SECONDS * 1000 + 2000 + 3000 + 5000;
// Each access-log line carries the URL: 8 KB URLs fill the log buffer in a
// few hundred requests instead of tens of thousands.
const PADDING = 'p'.repeat(8000);
const REQUESTS = Math.ceil((2 * LOG_BUFFER_BYTES) / PADDING.length);

interface StalledAgent {
  url: string;
  /** Everything read from the agent's stdout so far. */
  output: Buffer[];
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null }>;
  dataDir: string;
}


/**
 * An agent whose stdout is a pipe this test does not read (until it chooses
 * to), or the given descriptor (the write end of a FIFO another process reads).
 */
async function startStalledAgent(stdout: 'pipe' | number = 'pipe'): Promise<StalledAgent> {
  const dataDir = await makeTempDir();
  const configFile = `${dataDir}.config.json`;
  // A reboot takes 60 s: longer than the grace period, so stop has to cut it.
  await writeFile(configFile, JSON.stringify(simulatorConfig({ simulator: { delays: { reboot: 60_000 } }, jobs: { shutdownGraceSeconds: GRACE_SECONDS }, accessLog: true })));
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(distRoot, 'core/main.js'), '--config', configFile, '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    cwd: repoRoot,
    env: { ...process.env, HYPERKERN_LOG_LEVEL: 'info' },
    stdio: ['ignore', stdout, 'ignore'],
  });
  // Nobody reads: the parent's stream stops pulling once its own small buffer
  // is full. Its chunks are kept from the start: when the child exits, Node
  // resumes stdio streams nobody reads (child_process flushStdio), and what
  // that flows out must not be lost to the test.
  const output: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => void output.push(chunk));
  child.stdout?.pause();
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const agent = { url, child, exited, dataDir, output };
  try {
    // The agent's own start, scaled by how loaded this machine measured itself to be.
    await waitFor(async () => (await fetch(`${url}/health`).catch(() => undefined))?.ok, underLoad(30_000), 'the agent to answer /health');
  } catch (error) {
    // A start that failed leaves no process and no data dir behind.
    await stopAndClean(agent);
    throw error;
  } finally {
    await removeDir(configFile);
  }
  return agent;
}

async function stopAndClean(agent: StalledAgent): Promise<void> {
  if (agent.child.exitCode === null && agent.child.signalCode === null) {
    agent.child.kill('SIGKILL');
    await agent.exited;
  }
  await removeDir(agent.dataDir);
}

/** Fill the log far past its buffer; every request must still be answered. */
async function flood(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (let i = 0; i < REQUESTS; i += 10) {
    const batch = Array.from({ length: 10 }, (_, k) => fetch(`${url}/health?n=${i + k}&padding=${PADDING}`).then((r) => r.status));
    expect(await Promise.all(batch)).to.deep.equal(Array(10).fill(200));
    expect(Date.now(), 'requests answered in time while stdout is stalled').to.be.below(deadline);
  }
}

async function health(url: string): Promise<any> {
  return (await fetch(`${url}/health`)).json();
}

/** All the agent wrote to its stdout, read to the end. */
async function readAll(agent: StalledAgent): Promise<string> {
  const stream = agent.child.stdout!;
  const ended = new Promise((resolve) => (stream.readableEnded ? resolve(undefined) : stream.once('end', resolve)));
  stream.resume();
  await ended;
  return Buffer.concat(agent.output).toString('utf8');
}

describe('logging under a stalled stdout reader', function () {
  this.timeout(120_000);
  let agent: StalledAgent | undefined;

  afterEach(async () => {
    if (agent) await stopAndClean(agent);
    agent = undefined;
  });

  it('keeps serving, counts dropped lines in /health, and exits on SIGTERM within the grace period with a job still running', async () => {
    agent = await startStalledAgent();
    const created = await fetch(`${agent.url}/guests?wait=30`, { method: 'POST', body: '{}' }).then((r) => r.json());
    await fetch(`${agent.url}/guests/${created.id}/start?wait=30`, { method: 'POST' });
    const reboot = await fetch(`${agent.url}/guests/${created.id}/reboot`, { method: 'POST' });
    expect(reboot.status).to.equal(202);

    await flood(agent.url);
    const { logLinesDropped } = await health(agent.url);
    expect(logLinesDropped, 'lines dropped while nobody read stdout').to.be.greaterThan(0);

    const signalled = Date.now();
    agent.child.kill('SIGTERM');
    const { code, signal } = await Promise.race([
      agent.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit within ${2 * EXIT_BOUND_MS} ms of SIGTERM`)), 2 * EXIT_BOUND_MS)),
    ]);
    const tookMs = Date.now() - signalled;
    expect(signal, 'exited by itself, not killed').to.equal(null);
    expect(code).to.equal(0);
    expect(tookMs).to.be.below(EXIT_BOUND_MS);
    // The reboot was running: stop waited for its grace period, then cut it.
    expect(tookMs).to.be.at.least(GRACE_SECONDS * 1000 - 100);

    // Only now is the pipe read (what the agent wrote stays in it): the exit
    // did not depend on it. What did get through is whole lines: drops happen
    // per line, never mid-line. Only the very last line may end short: the
    // agent's last write, when the full pipe took just its first part.
    const text = await readAll(agent);
    const lines = text.split('\n').filter(Boolean);
    expect(lines.length).to.be.greaterThan(0);
    expect(lines[0], 'the stream starts with the first line written').to.match(/^\{"level":"info",.*"msg":"[^"]*ready[^"]*"\}$/);
    const whole = text.endsWith('\n') ? lines : lines.slice(0, -1);
    for (const line of whole) expect(() => JSON.parse(line), line.slice(0, 200)).not.to.throw();
    if (!text.endsWith('\n')) expect(lines.at(-1), 'a cut last line is the start of a line').to.match(/^\{"level":"/);
  });

  /** SIGTERM, then the exit by itself (code 0) within the bound; how long it took. */
  async function terminateWithinBound(child: ChildProcess, exited: StalledAgent['exited']): Promise<number> {
    const signalled = Date.now();
    child.kill('SIGTERM');
    const { code, signal } = await Promise.race([
      exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit within ${2 * EXIT_BOUND_MS} ms of SIGTERM`)), 2 * EXIT_BOUND_MS)),
    ]);
    expect(signal, 'exited by itself, not killed').to.equal(null);
    expect(code).to.equal(0);
    return Date.now() - signalled;
  }

  it('exits on SIGTERM after the reader of its stdout socket went away (EPIPE)', async () => {
    agent = await startStalledAgent();
    // Read a little, then close the reading end for good.
    agent.child.stdout!.resume();
    await new Promise((resolve) => agent!.child.stdout!.once('data', resolve));
    agent.child.stdout!.destroy();
    // Access-log lines now meet EPIPE; the API goes on answering.
    for (let i = 0; i < 20; i++) expect((await fetch(`${agent.url}/health?reader-gone=${i}`)).status).to.equal(200);
    expect(await terminateWithinBound(agent.child, agent.exited)).to.be.below(EXIT_BOUND_MS);
  });

  it('exits on SIGTERM after `head -1` on its stdout pipe exited (a real pipe, EPIPE)', async () => {
    const dir = await makeTempDir('hk-fifo-');
    let head: ChildProcess | undefined;
    try {
      const fifo = path.join(dir, 'stdout');
      execFileSync('mkfifo', [fifo]);
      // O_RDWR opens a FIFO without waiting for a writer; head then blocks in read(2) as on any pipe.
      const readEnd = openSync(fifo, constants.O_RDWR);
      const writeEnd = openSync(fifo, constants.O_WRONLY);
      head = spawn('head', ['-1'], { stdio: [readEnd, 'ignore', 'ignore'] });
      const headExited = new Promise((resolve) => head!.once('exit', resolve));
      agent = await startStalledAgent(writeEnd);
      // Only head and the agent hold the FIFO now: when head exits, nobody reads.
      closeSync(readEnd);
      closeSync(writeEnd);
      await headExited;
      for (let i = 0; i < 20; i++) expect((await fetch(`${agent.url}/health?head-gone=${i}`)).status).to.equal(200);
      expect(await terminateWithinBound(agent.child, agent.exited)).to.be.below(EXIT_BOUND_MS);
    } finally {
      if (head && head.exitCode === null && head.signalCode === null) head.kill('SIGKILL');
      await removeDir(dir);
    }
  });

  it('says how many lines were lost once the reader catches up', async () => {
    agent = await startStalledAgent();
    await flood(agent.url);
    const dropped: number = (await health(agent.url)).logLinesDropped;
    expect(dropped).to.be.greaterThan(0);

    const lines: any[] = [];
    let buffered = '';
    agent.child.stdout!.setEncoding('utf8');
    agent.child.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
      }
    });
    agent.child.stdout!.resume();
    const warning = await waitFor(async () => lines.find((l) => l.msg === 'log lines dropped: stdout was not read fast enough'), 30_000, 'the dropped-lines warning');
    expect(warning.level).to.equal('warn');
    expect(warning.droppedTotal).to.be.at.least(dropped);
    // Logging goes on normally afterwards.
    await fetch(`${agent.url}/health?after=1`);
    await waitFor(async () => lines.some((l) => l.msg === 'request' && l.url === '/health?after=1'), 30_000, 'the access-log line of a later request');
  });
});
