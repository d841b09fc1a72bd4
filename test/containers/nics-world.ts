/**
 * Real LXC containers and bridges for the NIC and metrics tests, made with
 * the lxc-* commands themselves: a busybox-static root (the image the
 * container image tests build, unpacked by hand) under an overlay, so that
 * lxc-destroy removes only the container's own layer. Every name is unique
 * to the run; everything made is removed by name in dispose(), whatever
 * failed before.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir } from '../support/agent.js';

const execFileAsync = promisify(execFile);

/** Runs a command; its stdout, or an error carrying its stderr. */
export async function run(command: string, args: string[], timeoutMs = 60_000): Promise<string> {
  try {
    return (await execFileAsync(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const failed = error as Error & { stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${failed.stderr || failed.message}`);
  }
}

/** A random name of `prefix` + 8 hex digits (bridges: keep prefix ≤ 7 for IFNAMSIZ). */
export const uniqueName = (prefix: string): string => prefix + randomBytes(4).toString('hex');

const TOOLS = ['sh', 'sleep', 'ip', 'ping', 'dd', 'cat', 'sync'];

export class LxcWorld {
  readonly lxcPath: string;
  private readonly base: string;
  private readonly containers = new Set<string>();
  private readonly bridges = new Set<string>();

  private constructor(readonly dir: string) {
    this.lxcPath = path.join(dir, 'lxc');
    this.base = path.join(dir, 'base');
  }

  static async create(): Promise<LxcWorld> {
    const world = new LxcWorld(await makeTempDir('hk-ctnics-'));
    for (const sub of ['bin', 'proc', 'sys', 'dev', 'tmp']) await mkdir(path.join(world.base, sub), { recursive: true });
    await mkdir(world.lxcPath);
    await copyFile('/bin/busybox', path.join(world.base, 'bin', 'busybox'));
    for (const tool of TOOLS) await symlink('busybox', path.join(world.base, 'bin', tool));
    return world;
  }

  /** A bridge of this run, up, with `address` (CIDR) on it when given. */
  async bridge(address?: string): Promise<string> {
    const name = uniqueName('hkt');
    this.bridges.add(name);
    await run('ip', ['link', 'add', name, 'type', 'bridge']);
    if (address) await run('ip', ['addr', 'add', address, 'dev', name]);
    await run('ip', ['link', 'set', name, 'up']);
    return name;
  }

  /** The container's upper layer: where its writes go (a real disk folder, not tmpfs). */
  upperOf(name: string): string {
    return path.join(this.dir, 'upper', name);
  }

  /** Creates and starts container `name` running `sleep` as init, with `lines` added to its config. */
  async start(name: string, lines: string[]): Promise<void> {
    this.containers.add(name);
    await mkdir(this.upperOf(name), { recursive: true });
    const config = [
      `lxc.uts.name = ${name}`,
      'lxc.init.cmd = /bin/sleep 3600',
      'lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed',
      ...lines,
    ];
    const file = path.join(this.dir, `${name}.conf`);
    await writeFile(file, config.join('\n') + '\n');
    await run('lxc-create', ['-n', name, '-P', this.lxcPath, '-t', 'none', '-f', file]);
    // The overlay root after the create: lxc-create checks that a rootfs path exists as a folder (as bench/container-runtimes.sh does).
    await appendFile(path.join(this.lxcPath, name, 'config'), `lxc.rootfs.path = overlay:${this.base}:${this.upperOf(name)}\n`);
    await run('lxc-start', ['-n', name, '-P', this.lxcPath, '-d', '-o', path.join(this.dir, `${name}.log`), '-l', 'INFO']);
    await run('lxc-wait', ['-n', name, '-P', this.lxcPath, '-s', 'RUNNING', '-t', '60']);
  }

  /** Runs `argv` inside the container; its stdout. */
  attach(name: string, argv: string[], timeoutMs?: number): Promise<string> {
    return run('lxc-attach', ['-n', name, '-P', this.lxcPath, '--', ...argv], timeoutMs);
  }

  async stop(name: string): Promise<void> {
    await run('lxc-stop', ['-k', '-n', name, '-P', this.lxcPath]);
  }

  async startAgain(name: string): Promise<void> {
    await run('lxc-start', ['-n', name, '-P', this.lxcPath, '-d']);
    await run('lxc-wait', ['-n', name, '-P', this.lxcPath, '-s', 'RUNNING', '-t', '60']);
  }

  /** Stops and destroys every container, deletes every bridge and the temp dir; errors are collected, not thrown early. */
  async dispose(): Promise<void> {
    const problems: string[] = [];
    for (const name of this.containers) {
      await run('lxc-stop', ['-k', '-n', name, '-P', this.lxcPath]).catch(() => undefined);
      if (existsSync(path.join(this.lxcPath, name, 'config'))) await run('lxc-destroy', ['-n', name, '-P', this.lxcPath]).catch((error: Error) => problems.push(error.message));
    }
    for (const bridge of this.bridges) {
      if (existsSync(`/sys/class/net/${bridge}`)) await run('ip', ['link', 'del', bridge]).catch((error: Error) => problems.push(error.message));
    }
    await removeDir(this.dir);
    if (problems.length > 0) throw new Error(`cleanup: ${problems.join('; ')}`);
  }
}
