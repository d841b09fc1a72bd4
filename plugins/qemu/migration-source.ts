/**
 * The source side of moving a QEMU guest (docs/migration.md): what QEMU is
 * asked while the guest leaves. Live: every disk mirrored to the target's
 * NBD exports (drive-mirror, sync full, onto the blank disks the target
 * made), then the RAM (migrate, with a bounded downtime), then the mirrors
 * ended (block-job-cancel of a READY mirror leaves the target a
 * point-in-time copy, taken with the guest stopped). Cold: each disk read as
 * a self-contained qcow2. Nothing here decides who owns the guest: the
 * kernel does, and calls abortOutgoing or removeOutgoing.
 */
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { StageRejection, type CopyLimits, type CopyProgress, type DiskStream, type Guest, type IncomingPlan, type MemoryCopyResult, type MigrationEndpoint, type OutgoingFacts } from '../../core/contract/index.js';
import { driveId } from './command-line.js';
import { run } from './exec.js';
import type { Machine } from './machine.js';
import type { QmpEvent } from './qmp-client.js';
import { QmpWakeup } from './qmp-wakeup.js';
import { RunDir } from './run-dir.js';

/**
 * How often QEMU's progress is read while a copy runs (GET /jobs shows it).
 * The copies' ends do not wait for this: QEMU's events wake the loops
 * (qmp-wakeup.ts); a poll's lateness once added up to a quarter second to
 * the guest's pause and to the move (bench/migration.ts).
 */
const PROGRESS_MS = 250;
/** Events that end a wait for the disks' mirrors (READY, or ended: completed, cancelled, failed). */
const MIRROR_EVENTS = new Set(['BLOCK_JOB_READY', 'BLOCK_JOB_COMPLETED', 'BLOCK_JOB_CANCELLED', 'BLOCK_JOB_ERROR']);
/** The RAM copy's states that end it (MIGRATION events, with the `events` capability). */
const MIGRATION_ENDS = new Set(['completed', 'failed', 'cancelled']);
/** Migration bandwidth: QEMU's default (32 MiB/s) would stretch a move for nothing on a LAN. */
const MAX_BANDWIDTH = 10 * 1024 * 1024 * 1024;

export interface SourceDeps {
  qemuImg: string;
  dataDir: string;
  machines: Map<string, Machine>;
}

interface BlockJob {
  device: string;
  len: number;
  offset: number;
  ready: boolean;
  status?: string;
}

interface MigrationInfo {
  status?: string;
  ram?: { transferred?: number; remaining?: number; total?: number };
  downtime?: number;
  'error-desc'?: string;
}

interface BlockInfo {
  device: string;
  inserted?: { image?: { 'virtual-size'?: number; snapshots?: { name: string }[] } };
}

/** The mirror job of a disk (its id in QMP). */
export const mirrorJob = (device: string): string => `migrate-${device}`;

const uriHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('cancelled'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class MigrationSource {
  constructor(private readonly deps: SourceDeps) {}

  private machine(guest: Guest): Machine {
    const machine = this.deps.machines.get(guest.id);
    if (!machine) throw new StageRejection(409, `guest ${guest.id} has no running QEMU on this host; a live move needs one`);
    return machine;
  }

  async checkOutgoing(guest: Guest, live: boolean): Promise<OutgoingFacts> {
    const diskBytes: Record<string, number> = {};
    const snapshots: string[] = [];
    if (live) {
      const blocks = await this.machine(guest).qmp.execute<BlockInfo[]>('query-block');
      for (const disk of guest.disks) {
        const image = blocks.find((b) => b.device === driveId(disk.device))?.inserted?.image;
        if (!image?.['virtual-size']) throw new Error(`QEMU reports no image for disk ${disk.device}`);
        diskBytes[disk.device] = image['virtual-size'];
        for (const s of image.snapshots ?? []) snapshots.push(`${disk.device}/${s.name}`);
      }
    } else {
      for (const disk of guest.disks) {
        const info = await this.imageInfo(guest, disk.device);
        diskBytes[disk.device] = info['virtual-size'];
        for (const s of info.snapshots ?? []) snapshots.push(`${disk.device}/${s.name}`);
      }
    }
    if (snapshots.length > 0) {
      throw new StageRejection(409, `guest ${guest.id} has snapshots (${snapshots.join(', ')}); snapshots do not move with a guest: delete (or download) them first (docs/migration.md)`);
    }
    return { diskBytes };
  }

  async copyDisks(guest: Guest, nbd: NonNullable<IncomingPlan['nbd']>, limits: CopyLimits, progress: (p: CopyProgress) => void, signal: AbortSignal): Promise<void> {
    const { qmp } = this.machine(guest);
    const jobs = new Set(guest.disks.map((d) => mirrorJob(d.device)));
    const failures = new Map<string, string>();
    const onEvent = (event: QmpEvent) => {
      const device = String(event.data?.device ?? '');
      if (!jobs.has(device)) return;
      if (event.event === 'BLOCK_JOB_ERROR') failures.set(device, `I/O error (${String(event.data?.operation ?? 'write')}) on the target`);
      if (event.event === 'BLOCK_JOB_COMPLETED' && event.data?.error) failures.set(device, String(event.data.error));
    };
    qmp.on('event', onEvent);
    const wakeup = new QmpWakeup(qmp, (event) => MIRROR_EVENTS.has(event.event) && jobs.has(String(event.data?.device ?? '')));
    try {
      for (const disk of guest.disks) {
        const exportName = nbd.exports[disk.device];
        if (!exportName) throw new Error(`the target exports no disk ${disk.device}`);
        await qmp.execute('drive-mirror', {
          'job-id': mirrorJob(disk.device),
          device: driveId(disk.device),
          target: `nbd://${uriHost(nbd.host)}:${nbd.port}/${exportName}`,
          format: 'raw',
          sync: 'full',
          mode: 'existing',
          'on-target-error': 'stop',
          ...(limits.bandwidth ? { speed: limits.bandwidth } : {}),
        });
      }
      for (;;) {
        const mine = (await qmp.execute<BlockJob[]>('query-block-jobs')).filter((j) => jobs.has(j.device));
        for (const [device, error] of failures) throw new Error(`copying disk ${device.replace(/^migrate-/, '')} to the target failed: ${error}`);
        if (mine.length < jobs.size) throw new Error('a disk copy ended before it was in sync (the target closed its NBD export?)');
        const total = mine.reduce((sum, j) => sum + j.len, 0);
        const sent = mine.reduce((sum, j) => sum + j.offset, 0);
        if (total > 0) progress({ sent, left: Math.max(0, total - sent), total });
        if (mine.every((j) => j.ready)) return;
        await wakeup.sleep(PROGRESS_MS, signal);
      }
    } finally {
      wakeup.dispose();
      qmp.removeListener('event', onEvent);
    }
  }

  async copyMemory(guest: Guest, memory: MigrationEndpoint, limits: CopyLimits, progress: (p: CopyProgress) => void, signal: AbortSignal): Promise<MemoryCopyResult> {
    const { qmp } = this.machine(guest);
    // The `events` capability makes QEMU send MIGRATION on each state change: the copy's end wakes the loop below.
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await qmp.execute('migrate-set-parameters', { 'downtime-limit': limits.downtimeMs, 'max-bandwidth': limits.bandwidth ?? MAX_BANDWIDTH });
    const wakeup = new QmpWakeup(qmp, (event) => event.event === 'MIGRATION' && MIGRATION_ENDS.has(String(event.data?.status)));
    try {
      await qmp.execute('migrate', { uri: `tcp:${uriHost(memory.host)}:${memory.port}` });
      for (;;) {
        const info = await qmp.execute<MigrationInfo>('query-migrate');
        // Right after `migrate` QEMU may not count yet (no `ram`): what the job shows stays as it was, not zeros.
        const ram = info.ram;
        if (ram?.total) progress({ sent: ram.transferred ?? 0, left: ram.remaining ?? 0, total: ram.total });
        if (info.status === 'completed') return { downtimeMs: info.downtime };
        if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`QEMU's migration ${info.status}: ${info['error-desc'] ?? 'no reason given'}`);
        await wakeup.sleep(PROGRESS_MS, signal);
      }
    } finally {
      wakeup.dispose();
    }
  }

  async finishOutgoing(guest: Guest): Promise<void> {
    await this.endMirrors(this.machine(guest), false);
  }

  async abortOutgoing(guest: Guest, wasRunning: boolean): Promise<void> {
    const machine = this.deps.machines.get(guest.id);
    if (!machine) return; // no QEMU (a cold move, or it died): nothing runs to undo
    const info = await machine.qmp.execute<MigrationInfo>('query-migrate');
    if (info.status && !['completed', 'failed', 'cancelled', 'none'].includes(info.status)) {
      await machine.qmp.execute('migrate_cancel');
      for (let i = 0; i < 200; i++) {
        const now = await machine.qmp.execute<MigrationInfo>('query-migrate');
        if (!now.status || ['completed', 'failed', 'cancelled', 'none'].includes(now.status)) break;
        await sleep(50);
      }
    }
    await this.endMirrors(machine, true);
    const status = await machine.status();
    // Paused by the migration (postmigrate once it completed): the guest goes on here.
    if (wasRunning && status !== 'running') await machine.qmp.execute('cont');
  }

  async readDisk(guest: Guest, device: string): Promise<DiskStream> {
    const runDir = new RunDir(this.deps.dataDir, guest.id);
    const file = runDir.disk(device);
    const info = await this.imageInfo(guest, device);
    let source = file;
    let done = async (): Promise<void> => {};
    if (info['backing-filename']) {
      // An overlay: flattened into one self-contained image (the target has no base).
      source = path.join(runDir.dir, `migrate-${device}.qcow2`);
      await run(this.deps.qemuImg, ['convert', '-O', 'qcow2', file, source], { timeoutMs: 3_600_000 });
      done = () => rm(source, { force: true });
    }
    const size = (await stat(source)).size;
    return { stream: createReadStream(source), size, done };
  }

  private async imageInfo(guest: Guest, device: string): Promise<{ 'virtual-size': number; 'backing-filename'?: string; snapshots?: { name: string }[] }> {
    const file = new RunDir(this.deps.dataDir, guest.id).disk(device);
    const { stdout } = await run(this.deps.qemuImg, ['info', '-U', '--output=json', file]);
    return JSON.parse(stdout);
  }

  /** Ends this guest's mirror jobs: `force` drops them mid-copy; otherwise a READY mirror completes its copy first. */
  private async endMirrors(machine: Machine, force: boolean): Promise<void> {
    const ours = async () => (await machine.qmp.execute<BlockJob[]>('query-block-jobs')).filter((j) => j.device.startsWith('migrate-'));
    // The guest is paused meanwhile (after the RAM copy): each job's end (its JOB_STATUS_CHANGE to "null", gone) wakes the wait at once.
    const wakeup = new QmpWakeup(machine.qmp, (event) => event.event === 'JOB_STATUS_CHANGE' && event.data?.status === 'null' && String(event.data?.id).startsWith('migrate-'));
    try {
      for (const job of await ours()) {
        await machine.qmp.execute('block-job-cancel', { device: job.device, force }).catch(() => undefined);
      }
      const deadline = performance.now() + 60_000;
      while (performance.now() < deadline) {
        if ((await ours()).length === 0) return;
        await wakeup.sleep(50);
      }
    } finally {
      wakeup.dispose();
    }
    throw new Error('the disk mirrors did not end within 60 s');
  }
}
