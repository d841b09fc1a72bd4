/**
 * A data dir that cannot hold state stops the agent at start with one line
 * on stderr naming the dir, the cause and the fix, never a stack: a real
 * tmpfs remounted read-only with state in it (what the kernel does to a
 * disk after I/O errors), the same tmpfs filled up, and a dir and a state
 * file owned by another user (the agent run as uid 65534). A taken port and
 * a start-up failure that is a plain Error from a plugin are one line too.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, open, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { configFileFor, distRoot, removeDir, repoRoot, startAgent } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';

const run = promisify(execFile);
const NOBODY = 65534;
/** Generous on a loaded machine: a refused start takes well under a second. */
const EXIT_WITHIN_MS = 30000;
let configDir: string;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `hyperkern serve` on that data dir (as `uid` if given), expected to exit by itself. */
async function serve(dataDir: string, config: object, uid?: number, listen = '127.0.0.1:0'): Promise<Exit> {
  // The config lives off the broken file system.
  const { file, written } = await configFileFor(config, path.join(configDir, path.basename(dataDir)));
  if (uid !== undefined) await chown(file, uid, uid);
  try {
    const child = spawn(process.execPath, [path.join(distRoot, 'core/main.js'), '--config', file, '--listen', listen, '--data-dir', dataDir], {
      cwd: repoRoot,
      // The level an operator runs with (debug shows a bug's stack on purpose).
      env: { ...process.env, HYPERKERN_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(uid !== undefined ? { uid, gid: uid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS);
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    clearTimeout(timer);
    return { code, stdout, stderr };
  } finally {
    if (written) await rm(written, { force: true });
  }
}

/** Exit 1 and exactly one line on stderr matching `pattern`; no stack anywhere. */
function expectOneLine(exit: Exit, pattern: RegExp): void {
  const output = `stdout:\n${exit.stdout}\nstderr:\n${exit.stderr}`;
  expect(exit.code, output).to.equal(1);
  const lines = exit.stderr.split('\n').filter((line) => line !== '');
  expect(lines, output).to.have.length(1);
  expect(lines[0], output).to.match(pattern);
  expect(`${exit.stdout}${exit.stderr}`, 'no stack trace').to.not.match(/\n\s+at |unexpected error/);
}

describe('start-up failures on the data dir: one line naming the dir and the fix', function () {
  this.timeout(120000);
  let mountPoint: string;
  let mounted = false;

  before(async function () {
    configDir = await mkdtemp(path.join(tmpdir(), 'hyperkern-datadir-config-'));
    await chmod(configDir, 0o755); // the agent run as nobody reads its config here
    mountPoint = await mkdtemp(path.join(tmpdir(), 'hyperkern-datadir-'));
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', mountPoint]);
      mounted = true;
    } catch (error) {
      await removeDir(mountPoint);
      console.log(`      (skipped: cannot mount a tmpfs here: ${(error as Error).message.split('\n')[0]})`);
      this.skip();
    }
  });
  after(async () => {
    if (mounted) await run('umount', [mountPoint]);
    await removeDir(mountPoint);
    await removeDir(configDir);
  });

  /** A data dir with state in it: an agent ran there, created a guest and stopped. */
  async function dataDirWithState(name: string): Promise<string> {
    const dataDir = path.join(mountPoint, name);
    const agent = await startAgent({ config: simulatorConfig(), dataDir });
    try {
      expect((await agent.request('POST', '/guests?wait=10', { memory: 64 })).status).to.equal(200);
    } finally {
      expect(await agent.stop()).to.equal(0);
    }
    return dataDir;
  }

  it('a read-only remount of the disk holding the state', async () => {
    const dataDir = await dataDirWithState('ro');
    await run('mount', ['-o', 'remount,ro', mountPoint]);
    try {
      expectOneLine(await serve(dataDir, simulatorConfig()), new RegExp(`^hyperkern: data dir ${dataDir} is on a read-only file system \\(EROFS\\): remount it read-write`));
      // A data dir still to be made on that file system: the same reason, not "ENOENT".
      expectOneLine(await serve(path.join(mountPoint, 'new', 'data'), simulatorConfig()), /is on a read-only file system \(EROFS\)/);
    } finally {
      await run('mount', ['-o', 'remount,rw', mountPoint]);
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('a full disk, with state and without', async () => {
    const dataDir = await dataDirWithState('full');
    const filler = path.join(mountPoint, 'filler');
    const handle = await open(filler, 'w');
    try {
      // Bounded: the tmpfs is 4 MiB; this allows for 64.
      for (let i = 0; i < 1024; i++) await handle.write(Buffer.alloc(64 * 1024));
      throw new Error('the tmpfs did not fill up');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      await handle.close();
    }
    try {
      expectOneLine(await serve(dataDir, simulatorConfig()), new RegExp(`^hyperkern: data dir ${dataDir} has no space left \\(ENOSPC\\): free space`));
      expectOneLine(await serve(path.join(mountPoint, 'empty'), simulatorConfig()), /has no space left \(ENOSPC\)/);
    } finally {
      await rm(filler, { force: true });
      await rm(dataDir, { recursive: true, force: true });
      await rm(path.join(mountPoint, 'empty'), { recursive: true, force: true });
    }
  });

  it('a data dir or a state file the agent user may not write', async function () {
    if (process.getuid?.() !== 0) this.skip(); // running the agent as another user needs root
    const dataDir = await dataDirWithState('owner');
    try {
      // The dir belongs to root (mode 0755), the agent runs as nobody.
      expectOneLine(
        await serve(dataDir, simulatorConfig(), NOBODY),
        new RegExp(`^hyperkern: data dir ${dataDir} is not writable by this agent \\(uid ${NOBODY}, EACCES\\): it is owned by uid 0, mode 0755; chown -R ${NOBODY} ${dataDir}`),
      );
      // The dir is the agent's, the state file still root's (a restore done as root).
      await chown(dataDir, NOBODY, NOBODY);
      expectOneLine(
        await serve(dataDir, simulatorConfig(), NOBODY),
        new RegExp(`^hyperkern: data dir ${dataDir} is not writable by this agent \\(uid ${NOBODY}, EACCES\\): ${dataDir}/hyperkern.sqlite is owned by uid 0, mode 0644`),
      );
      // Once it is all the agent's, it starts (and finds its guest).
      await run('chown', ['-R', `${NOBODY}:${NOBODY}`, dataDir]);
      const { file, written } = await configFileFor(simulatorConfig(), path.join(configDir, 'owner-ok'));
      await chown(file, NOBODY, NOBODY);
      const child = spawn(process.execPath, [path.join(distRoot, 'core/main.js'), '--config', file, '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
        uid: NOBODY,
        gid: NOBODY,
      });
      const closed = new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
      try {
        let out = '';
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`not listening within ${EXIT_WITHIN_MS} ms:\n${out}`)), EXIT_WITHIN_MS);
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            const line = out.split('\n').find((l) => l.includes('"msg":"listening"'));
            if (line) {
              clearTimeout(timer);
              resolve(JSON.parse(line).url);
            }
          });
          child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
          closed.then(() => reject(new Error(`exited before listening:\n${out}`)));
        });
        expect(await (await fetch(`${url}/guests`)).json()).to.have.length(1);
      } finally {
        child.kill('SIGTERM');
        expect(await closed).to.equal(0);
        if (written) await rm(written, { force: true });
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('a port another process listens on: one line naming it, not an "unexpected error"', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
    try {
      expectOneLine(await serve(path.join(mountPoint, 'port'), simulatorConfig(), undefined, address), new RegExp(`^hyperkern: cannot listen on ${address}: EADDRINUSE \\(another process uses that port`));
    } finally {
      await new Promise((resolve) => taken.close(resolve));
      await rm(path.join(mountPoint, 'port'), { recursive: true, force: true });
    }
  });

  it('a plugin failing at start with a plain Error: one line, no stack', async () => {
    const config = simulatorConfig();
    config.plugins.push({ module: path.join(distRoot, 'test/fixtures/plugins/fails-at-start.js') });
    const exit = await serve(path.join(mountPoint, 'plugin'), config);
    expect(exit.code, exit.stderr).to.equal(1);
    const lines = exit.stderr.split('\n').filter((line) => line !== '');
    expect(lines, exit.stderr).to.deep.equal(['hyperkern: unexpected error: cannot read the host inventory (HYPERKERN_LOG_LEVEL=debug shows where)']);
    await rm(path.join(mountPoint, 'plugin'), { recursive: true, force: true });
  });
});
