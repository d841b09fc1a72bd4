/**
 * A disposable QEMU test world: temp data and images dirs (short paths, as
 * unix socket paths are limited), the tiny guest's kernel in the images dir,
 * an optional Linux bridge of our own with a host address, and cleanup that
 * kills the world's QEMU processes by pid and removes its taps and bridge.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import 'reflect-metadata';
import type { Guest } from '../../core/contract/index.js';
import { KERNEL_METADATA } from '../../plugins/qemu/command-line.js';
import { qemuOptionsSchema, type QemuOptions } from '../../plugins/qemu/options.js';
import { QemuPlugin } from '../../plugins/qemu/plugin.js';
import { tinyGuest, type TinyGuest } from '../fixtures/tiny-guest/index.js';
import { MemoryLogger, RecordingGuests } from '../support/backend-testing.js';
import { killTestQemus } from './kill-test-qemus.js';
import { GUEST_ACTION_SECONDS } from '../support/load-budget.js';

export interface Bridge {
  name: string;
  /** Host address on the bridge, e.g. 10.213.7.1 */
  hostAddress: string;
  /** A free guest address on the same /24. */
  guestAddress(n: number): string;
}

export class QemuWorld {
  readonly guests = new RecordingGuests();
  readonly log = new MemoryLogger();
  readonly plugins: QemuPlugin[] = [];
  bridge?: Bridge;
  private constructor(
    readonly root: string,
    readonly dataDir: string,
    readonly imagesDir: string,
    readonly tiny: TinyGuest,
  ) {}

  static async create(options: { bridge?: boolean } = {}): Promise<QemuWorld> {
    const tiny = await tinyGuest();
    const root = await mkdtemp(path.join(tmpdir(), 'hkq-'));
    const world = new QemuWorld(root, path.join(root, 'd'), path.join(root, 'images'), tiny);
    execFileSync('mkdir', ['-p', world.dataDir, world.imagesDir]);
    await symlink(tiny.kernel, path.join(world.imagesDir, 'tiny-vmlinuz'));
    await symlink(tiny.initrd, path.join(world.imagesDir, 'tiny-initrd.img'));
    if (options.bridge) world.bridge = world.makeBridge();
    return world;
  }

  /** Options the way config would give them (schema defaults applied); TCG as this host's KVM cannot run guests. */
  options(extra: Partial<QemuOptions> = {}): QemuOptions {
    return qemuOptionsSchema.parse({ accel: 'tcg', imagesDir: this.imagesDir, shutdownTimeoutSeconds: GUEST_ACTION_SECONDS, rebootTimeoutSeconds: GUEST_ACTION_SECONDS, ...extra });
  }

  /** A new plugin instance over the same data dir, as a restarted agent would construct it. */
  async plugin(extra: Partial<QemuOptions> = {}): Promise<QemuPlugin> {
    const plugin = new QemuPlugin(this.options(extra), this.log, this.dataDir, this.guests, 'qemu');
    await plugin.start();
    this.plugins.push(plugin);
    return plugin;
  }

  /** Metadata that boots the tiny guest's kernel from the images dir. */
  get tinyBoot(): Guest['metadata'] {
    return { [KERNEL_METADATA.kernel]: 'tiny-vmlinuz', [KERNEL_METADATA.initrd]: 'tiny-initrd.img', [KERNEL_METADATA.cmdline]: this.tiny.cmdline };
  }

  runDir(guestId: string): string {
    return path.join(this.dataDir, guestId);
  }

  private makeBridge(): Bridge {
    const name = `hkbr${randomBytes(3).toString('hex')}`;
    const subnet = `10.213.${randomBytes(1)[0]}`;
    execFileSync('ip', ['link', 'add', name, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', name]);
    execFileSync('ip', ['link', 'set', name, 'up']);
    return { name, hostAddress: `${subnet}.1`, guestAddress: (n) => `${subnet}.${n}` };
  }

  async dispose(): Promise<void> {
    for (const plugin of this.plugins) await plugin.stop();
    await killTestQemus(this.dataDir);
    // Taps the tests' guests left (a failed test may skip delete).
    for (const guest of this.guests.guests.values()) {
      for (const nic of guest.nics) {
        if (nic.device) execFileSync('sh', ['-c', `ip link del dev ${nic.device} 2>/dev/null || true`]);
      }
    }
    if (this.bridge) execFileSync('ip', ['link', 'del', this.bridge.name]);
    await rm(this.root, { recursive: true, force: true });
  }
}
