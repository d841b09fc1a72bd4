/**
 * What the libvirt backend's real-libvirtd tests need around them, and its
 * cleanup: a libvirtd (started by scripts/start-libvirtd.sh unless one runs;
 * stopped afterwards by PID only if this run started it), the tiny guest's
 * kernel and initrd in an images folder, a transient storage pool and a
 * bridge of this run's own, and a domain-name prefix unique to the run so
 * that other people's domains on the host are never touched.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { tinyGuest, TINY_GUEST_CMDLINE } from '../fixtures/tiny-guest/index.js';
import { makeTempDir, removeDir, repoRoot } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { GUEST_ACTION_SECONDS } from '../support/load-budget.js';

const execFileAsync = promisify(execFile);
export const SYSTEM_URI = 'qemu:///system';

/** One virsh call (tests only: the plugin itself keeps one virsh running). */
export async function virsh(uri: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('virsh', ['-q', '-c', uri, ...args], { env: { ...process.env, LC_ALL: 'C' }, timeout: 60000 });
  return stdout;
}

export class LibvirtWorld {
  /** Every domain and volume this run makes starts with this. */
  readonly prefix: string;
  readonly pool: string;
  readonly bridge: string;
  /** A transient libvirt network over `bridge`. */
  readonly network: string;
  readonly imagesDir: string;
  /** Where the images plugin leaves fetched images for libvirt.importImage. */
  readonly fetchDir: string;
  private startedDaemons: number[] = [];
  private bridgeCreated = false;

  private constructor(readonly root: string, readonly token: string) {
    this.prefix = `hkt${token}-`;
    this.pool = `hkt${token}-pool`;
    this.bridge = `hkt${token}br`;
    this.network = `hkt${token}-net`;
    this.imagesDir = path.join(root, 'images');
    this.fetchDir = path.join(root, 'fetched');
  }

  /** Guest metadata that boots the tiny guest directly. */
  get tinyBoot(): Record<string, string> {
    // no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer
    // check can fail and panic ("IO-APIC + timer doesn't work!"); VMs skip it.
    return { 'libvirt.kernel': 'vmlinuz', 'libvirt.initrd': 'initrd.img', 'libvirt.cmdline': `${TINY_GUEST_CMDLINE} no_timer_check` };
  }

  static async create(): Promise<LibvirtWorld> {
    const world = new LibvirtWorld(await makeTempDir('hkt-libvirt-'), randomBytes(3).toString('hex'));
    try {
      await world.startDaemon();
      const guest = await tinyGuest();
      await mkdir(world.imagesDir, { recursive: true });
      await symlink(guest.kernel, path.join(world.imagesDir, 'vmlinuz'));
      await symlink(guest.initrd, path.join(world.imagesDir, 'initrd.img'));
      const poolDir = path.join(world.root, 'pool');
      await mkdir(poolDir);
      // Transient: it disappears from libvirt when destroyed.
      await virsh(SYSTEM_URI, 'pool-create-as', world.pool, 'dir', '--target', poolDir);
      execFileSync('ip', ['link', 'add', world.bridge, 'type', 'bridge']);
      world.bridgeCreated = true;
      execFileSync('ip', ['link', 'set', world.bridge, 'up']);
      const netXml = path.join(world.root, 'network.xml');
      // Forward mode "bridge" over this run's bridge: libvirt adds no firewall rules and runs no dnsmasq.
      await writeFile(netXml, `<network><name>${world.network}</name><forward mode='bridge'/><bridge name='${world.bridge}'/></network>\n`);
      await virsh(SYSTEM_URI, 'net-create', netXml);
      return world;
    } catch (error) {
      await world.dispose();
      throw error;
    }
  }

  /** Options for the libvirt plugin in this world. */
  pluginOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      uri: SYSTEM_URI,
      domainType: 'qemu',
      domainPrefix: this.prefix,
      storagePool: this.pool,
      imagesDir: this.imagesDir,
      fetchDir: this.fetchDir,
      shutdownTimeoutSeconds: GUEST_ACTION_SECONDS,
      rebootTimeoutSeconds: GUEST_ACTION_SECONDS,
      statsMaxAgeMs: 0,
      vnc: true,
      ...extra,
    };
  }

  /** config/libvirt.json in this world: the libvirt plugin's options from pluginOptions(extra), fetched images under the run's folder. */
  config(extra: Record<string, unknown> = {}): any {
    const config = shippedConfig('libvirt.json');
    config.plugins.find((p: { module: string }) => p.module === 'libvirt').options = this.pluginOptions(extra);
    const images = config.plugins.find((p: { module: string }) => p.module === 'images');
    images.options = { ...images.options, imagesDir: this.fetchDir };
    return config;
  }

  /** Names of this run's domains that libvirt still has. */
  async domains(): Promise<string[]> {
    const names = await virsh(SYSTEM_URI, 'list', '--all', '--name').catch(() => '');
    return names.split('\n').map((n) => n.trim()).filter((n) => n.startsWith(this.prefix));
  }

  async volumes(): Promise<string[]> {
    const out = await virsh(SYSTEM_URI, 'vol-list', this.pool).catch(() => '');
    return out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
  }

  /** PIDs of QEMU processes running one of this run's domains (libvirt names them guest=NAME). */
  async qemuPids(): Promise<number[]> {
    const pids: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(`guest=${this.prefix}`)) pids.push(Number(entry));
    }
    return pids;
  }

  /** Removes every domain, volume, pool, bridge, file and daemon this run made. */
  async dispose(): Promise<void> {
    // A loaded libvirtd may fail a call; try again, and say what stays.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const left = await this.domains();
      if (left.length === 0) break;
      for (const name of left) {
        await virsh(SYSTEM_URI, 'destroy', name).catch(() => undefined);
        await virsh(SYSTEM_URI, 'undefine', name).catch((error: Error) => {
          if (attempt === 3) console.error(`could not undefine test domain ${name}: ${error.message}`);
        });
      }
    }
    for (const pid of await this.qemuPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const volume of await this.volumes()) await virsh(SYSTEM_URI, 'vol-delete', '--pool', this.pool, volume).catch(() => undefined);
    await virsh(SYSTEM_URI, 'pool-destroy', this.pool).catch(() => undefined);
    await virsh(SYSTEM_URI, 'net-destroy', this.network).catch(() => undefined);
    if (this.bridgeCreated) {
      try {
        execFileSync('ip', ['link', 'del', this.bridge]);
      } catch {
        /* already gone */
      }
    }
    if (this.startedDaemons.length > 0) {
      execFileSync('bash', [path.join(repoRoot, 'scripts/stop-libvirtd.sh'), ...this.startedDaemons.map(String)], { stdio: 'inherit' });
    }
    await removeDir(this.root);
  }

  /** Whether this run started libvirtd (and so may restart and must stop it). */
  get ownsDaemon(): boolean {
    return this.startedDaemons.length > 0;
  }

  /**
   * Stops libvirtd (SIGTERM to the PID in /run/libvirtd.pid, checked to be
   * libvirtd) and starts it again with scripts/start-libvirtd.sh. Domains keep
   * running: libvirtd reconnects to their QEMU processes.
   */
  async restartDaemon(): Promise<void> {
    const pid = Number((await readFile('/run/libvirtd.pid', 'utf8')).trim());
    if ((await readFile(`/proc/${pid}/comm`, 'utf8')).trim() !== 'libvirtd') throw new Error(`PID ${pid} in /run/libvirtd.pid is not libvirtd`);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) {
      if (!(await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => ''))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const owned = this.ownsDaemon;
    const before = this.startedDaemons.filter((p) => p !== pid);
    await this.startDaemon();
    // A libvirtd the host already ran is replaced, not taken over: leave the new one running afterwards.
    this.startedDaemons = owned ? [...before, ...this.startedDaemons] : before;
  }

  private async startDaemon(): Promise<void> {
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync('bash', [path.join(repoRoot, 'scripts/start-libvirtd.sh')], { timeout: 120000 }));
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`scripts/start-libvirtd.sh failed: ${e.stderr || e.message}`);
    }
    this.startedDaemons = [...stdout.matchAll(/^started \S+ (\d+)$/gm)].map((m) => Number(m[1]));
  }
}
