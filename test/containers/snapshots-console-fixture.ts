/**
 * Real LXC containers for the snapshot and console tests, made offline:
 * a busybox-static root (every applet linked) as the read-only lower layer,
 * each container's root `overlay:BASE:UPPER` in its own folder of a temp
 * lxcpath, its console logged to console.log there (the backend's lines).
 * Names are unique per test run; `cleanup` stops and destroys each by name
 * and removes the folder, whatever the tests left.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir, waitFor } from '../support/agent.js';

export const run = promisify(execFile);

export interface TestContainer {
  name: string;
  dir: string;
  upperDir: string;
  logFile: string;
}

export class LxcFixture {
  readonly names: string[] = [];
  private count = 0;

  private constructor(
    readonly work: string,
    readonly lxcPath: string,
    readonly base: string,
  ) {}

  /** A base root with busybox and an init that greets on its console, then runs a shell there. */
  static async make(prefix: string): Promise<LxcFixture> {
    const work = await makeTempDir(prefix);
    const base = path.join(work, 'base');
    for (const dir of ['bin', 'sbin', 'dev', 'proc', 'sys', 'tmp', 'etc', 'root']) await mkdir(path.join(base, dir), { recursive: true });
    await copyFile('/bin/busybox', path.join(base, 'bin', 'busybox'));
    const { stdout } = await run('/bin/busybox', ['--list']);
    for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox' && a !== 'init')) await symlink('busybox', path.join(base, 'bin', applet));
    await writeFile(path.join(base, 'sbin', 'init'), '#!/bin/sh\necho "hello from init $$"\nexec /bin/sh\n');
    await chmod(path.join(base, 'sbin', 'init'), 0o755);
    await writeFile(path.join(base, 'etc', 'motd'), 'from the image\n');
    const lxcPath = path.join(work, 'lxc');
    await mkdir(lxcPath);
    return new LxcFixture(work, lxcPath, base);
  }

  /** A new container (not started), its config written as the backend writes one, plus `extraLines`. */
  async container(extraLines: string[] = []): Promise<TestContainer> {
    const name = `hksc-${process.pid}-${++this.count}`;
    this.names.push(name);
    const dir = path.join(this.lxcPath, name);
    const upperDir = path.join(dir, 'upper');
    await mkdir(upperDir, { recursive: true });
    const logFile = path.join(dir, 'console.log');
    const lines = [
      `lxc.uts.name = ${name}`,
      `lxc.rootfs.path = overlay:${this.base}:${upperDir}`,
      'lxc.init.cmd = /sbin/init',
      'lxc.net.0.type = empty',
      'lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed',
      'lxc.autodev = 1',
      'lxc.tty.max = 0',
      // A devpts of its own: without one the console has no pty inside and init's shell reads EOF at once.
      'lxc.pty.max = 16',
      ...extraLines,
    ];
    await writeFile(path.join(dir, 'config'), lines.join('\n') + '\n');
    return { name, dir, upperDir, logFile };
  }

  async start(c: TestContainer): Promise<void> {
    await run('lxc-start', ['-n', c.name, '-P', this.lxcPath, '-d']);
    await run('lxc-wait', ['-n', c.name, '-P', this.lxcPath, '-s', 'RUNNING', '-t', '30']);
  }

  async stop(c: TestContainer): Promise<void> {
    await run('lxc-stop', ['-k', '-n', c.name, '-P', this.lxcPath]);
  }

  async state(c: TestContainer): Promise<string> {
    return (await run('lxc-info', ['-n', c.name, '-P', this.lxcPath, '-sH'])).stdout.trim();
  }

  /** The init PID while it runs, undefined when stopped. */
  async initPid(c: TestContainer): Promise<number | undefined> {
    const { stdout } = await run('lxc-info', ['-n', c.name, '-P', this.lxcPath, '-pH']);
    const pid = Number.parseInt(stdout, 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  /** Runs a shell command inside the running container; its stdout. */
  async sh(c: TestContainer, command: string): Promise<string> {
    return (await run('lxc-attach', ['-n', c.name, '-P', this.lxcPath, '--', '/bin/sh', '-c', command])).stdout;
  }

  async waitForLog(c: TestContainer, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => pattern.test(await readFile(c.logFile, 'latin1').catch(() => '')), timeoutMs, `${pattern} in ${c.name}'s console log`);
  }

  /** Stops and destroys every container by name, removes the folder. */
  async cleanup(): Promise<void> {
    for (const name of this.names) {
      // A frozen container's tasks cannot die until thawed.
      await run('lxc-unfreeze', ['-n', name, '-P', this.lxcPath]).catch(() => undefined);
      await run('lxc-stop', ['-k', '-n', name, '-P', this.lxcPath]).catch(() => undefined);
      await run('lxc-destroy', ['-n', name, '-P', this.lxcPath]).catch(() => undefined);
    }
    await removeDir(this.work);
  }
}
