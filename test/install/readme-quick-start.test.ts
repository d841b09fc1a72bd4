/**
 * The README's quick start, as written, on a fresh clone: the lines between
 * the README's `quick-start:simulator` markers are read from the clone's
 * own README.md and run by bash one after another (the agent line in the
 * background), and each step's outcome is checked. "Fresh" here: `git
 * clone` of the commit under test into a temp dir, its node_modules a link
 * to this checkout's (npm install would download them all again), then
 * `npm run prepare` (what npm install runs after downloading: the build).
 * Not covered: npm install's download, install-host-deps.sh's apt step (the
 * packages are there), the QEMU `npm start` line (the QEMU suites), and
 * port 8080, which the test replaces with a free one (HYPERKERN_LISTEN for
 * the agent, the curl URLs rewritten, HYPERKERN_URL for the CLI).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { makeTempDir, removeDir, repoRoot } from '../support/agent.js';

const run = promisify(execFile);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Step {
  line: string;
  rc: number;
  id: string;
  output: string;
}

/** The shell blocks between the README's quick-start markers. */
function quickStartBlocks(readme: string): string[][] {
  const start = readme.indexOf('<!-- quick-start:simulator');
  const end = readme.indexOf('<!-- /quick-start -->');
  expect(start, 'README has the quick-start markers').to.be.above(-1);
  expect(end).to.be.above(start);
  const blocks = [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].split('\n').filter((line) => line.trim() !== ''));
  return blocks;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("README quick start, run as written on a fresh clone", function () {
  // A clone, a full tsc build and an agent on a loaded 2-core machine.
  this.timeout(10 * 60 * 1000);
  let work: string;
  let clone: string;
  let agent: ChildProcess | undefined;
  let agentExit: Promise<unknown> | undefined;

  before(async () => {
    work = await makeTempDir('hyperkern-readme-');
    clone = path.join(work, 'hyperkern');
    await run('git', ['clone', '--quiet', repoRoot, clone]);
    await symlink(path.join(repoRoot, 'node_modules'), path.join(clone, 'node_modules'));
    await run('npm', ['run', 'prepare', '--silent'], { cwd: clone, maxBuffer: 16 * 1024 * 1024 });
  });
  after(async () => {
    if (agent?.pid && agent.exitCode === null && agent.signalCode === null) {
      // npm, its shell and the agent: the whole process group started for it.
      process.kill(-agent.pid, 'SIGTERM');
      const timer = setTimeout(() => process.kill(-agent!.pid!, 'SIGKILL'), 30000);
      await agentExit;
      clearTimeout(timer);
    }
    if (work) await removeDir(work);
  });

  it('starts the simulator, then every curl and hyperkern line does what the README says', async () => {
    const blocks = quickStartBlocks(await readFile(path.join(clone, 'README.md'), 'utf8'));
    expect(blocks.map((b) => b.length), 'the README quick start: one agent line, 3 curl lines, 6 CLI lines (update this test with it)').to.deep.equal([1, 3, 6]);
    const [[serverLine], curlLines, cliLines] = blocks;
    const port = await freePort();
    const env = { ...process.env, HYPERKERN_LISTEN: `127.0.0.1:${port}`, HYPERKERN_URL: `http://127.0.0.1:${port}`, XDG_CONFIG_HOME: '/nonexistent', HYPERKERN_LOG_LEVEL: 'info' };

    const started = Date.now();
    agent = spawn('bash', ['-c', serverLine], { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    agentExit = new Promise((resolve) => agent!.once('exit', resolve));
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening" within 120 s:\n${log}`)), 120000);
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        if (log.includes('"msg":"listening"')) {
          clearTimeout(timer);
          resolve();
        }
      };
      agent!.stdout!.on('data', onData);
      agent!.stderr!.on('data', onData);
      agentExit!.then(() => reject(new Error(`npm start exited:\n${log}`)));
    });
    // Built by prepare already: the start compiles nothing (it took 19-30 s when it always did).
    expect(Date.now() - started, 'npm start with nothing changed').to.be.below(20000);

    const lines = [...curlLines, ...cliLines];
    const script = lines.map((line, i) => `${line.replaceAll('localhost:8080', `localhost:${port}`)}\necho "\n@@step ${i} rc=$? id=\${ID:-}"`).join('\n');
    // After each line its exit code and $ID; a curl answer ends without a newline, so the marker starts a line of its own.
    const { stdout } = await run('bash', ['-O', 'expand_aliases', '-c', script], { cwd: clone, env, maxBuffer: 16 * 1024 * 1024 });
    const steps: Step[] = [];
    let output = '';
    for (const text of stdout.split('\n')) {
      const marker = /^@@step (\d+) rc=(\d+) id=(.*)$/.exec(text);
      if (!marker) {
        output += `${text}\n`;
        continue;
      }
      steps.push({ line: lines[Number(marker[1])], rc: Number(marker[2]), id: marker[3], output: output.trim() });
      output = '';
    }
    expect(steps.map((s) => s.rc), stdout).to.deep.equal(lines.map(() => 0));
    const [create, suspend, cpu, alias, cliCreate, shutdown, start, metrics, ls] = steps;

    // curl: the create boots the guest; its id is in $ID.
    expect(create.id).to.match(UUID);
    expect(create.output).to.equal('');
    const suspended = JSON.parse(suspend.output);
    expect(suspended).to.include({ id: create.id, state: 'suspended' });
    expect(JSON.parse(cpu.output), 'one entry per vCPU').to.have.length(2);

    // The CLI: -q gives the new guest's id; shutdown and start by id and by 8-character prefix.
    expect(alias.output).to.equal('');
    expect(cliCreate.id).to.match(UUID);
    expect(cliCreate.id).to.not.equal(create.id);
    const short = cliCreate.id.slice(0, 8);
    expect(shutdown.output).to.match(new RegExp(`^✔ shutdown ${short} complete in \\d+\\.\\ds \\(guest shutdown\\)$`));
    expect(start.output).to.match(new RegExp(`^✔ start ${short} complete in \\d+\\.\\ds \\(guest running\\)$`));
    expect(metrics.output.split('\n')).to.have.length(3);
    expect(metrics.output).to.match(/^VCPU\s+CPU_TIME\s+VCPU_TIME\n0\s+[\d.]+\s+[\d.]+\n1\s+/);
    expect(ls.output).to.include(create.id).and.include(cliCreate.id);
    expect(ls.output).to.match(new RegExp(`${cliCreate.id}\\s+running`));
    expect(ls.output).to.match(new RegExp(`${create.id}\\s+suspended`));
  });
});
