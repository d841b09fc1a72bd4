/**
 * The target side of moving a QEMU guest (docs/migration.md): the checks of
 * what this host cannot hold (made before anything exists), the incoming
 * copy (run dir, taps on the same network names, blank disks of the same
 * sizes; live, a paused QEMU with the same machine and devices waiting with
 * `-incoming defer`, its disks exported over NBD for the source's mirrors),
 * the commit's checks, and the removal of a copy that is not committed.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checkImageFile, ImageRefused, StageRejection, tapName, type Guest, type IncomingPlan, type Logger, type OutgoingFacts, type StageContext } from '../../core/contract/index.js';
import { buildCommandLine, driveId, KERNEL_METADATA, type LaunchPlan } from './command-line.js';
import { findImage } from './disk-images.js';
import { run } from './exec.js';
import { checkLaunchable } from './launch-checks.js';
import { Machine, type MachineListener } from './machine.js';
import type { ResolvedQemuOptions } from './options.js';
import { pathExists } from './path-exists.js';
import type { QemuConsoles } from './qemu-consoles.js';
import { findGuestProcess, launchQemu, terminate } from './qemu-process.js';
import { isDirectory } from './reattach.js';
import { QmpWakeup } from './qmp-wakeup.js';
import { RunDir } from './run-dir.js';
import { ensureTap, interfaceExists, isBridge, removeTap } from './taps.js';
import { noteIncomingTap, removeIncomingTaps } from './incoming-taps.js';
import { advertisedPlan, incomingPorts } from './incoming-ports.js';

export interface TargetDeps {
  options: ResolvedQemuOptions;
  dataDir: string;
  machines: Map<string, Machine>;
  listener: MachineListener;
  consoles: QemuConsoles;
  log: Logger;
  launchPlan(guest: Guest, ctx: StageContext): Promise<LaunchPlan>;
  allocateVnc(guestId: string): Promise<number>;
  releaseVnc(port: number): void;
}

/** How long a commit waits for an incoming copy that is still loading (the source sent it all). */
const INCOMING_END_MS = 30_000;

export class MigrationTarget {
  constructor(private readonly deps: TargetDeps) {}

  async checkIncoming(guest: Guest): Promise<void> {
    try {
      checkLaunchable(guest, this.deps.options.machine);
    } catch (error) {
      throw new StageRejection(422, `this host cannot run the guest: ${(error as Error).message}`);
    }
    for (const nic of guest.nics) {
      // A NIC on a bridge at the source needs that bridge here; a user-mode one needs nothing.
      if (nic.device && !(await isBridge(nic.network))) {
        throw new StageRejection(422, `NIC ${nic.name}: network "${nic.network}" is no bridge on this host; create it here first (docs/qemu.md)`);
      }
    }
    for (const key of [KERNEL_METADATA.kernel, KERNEL_METADATA.initrd]) {
      const name = guest.metadata?.[key];
      if (!name) continue;
      await findImage(this.deps.options.imagesDir, name, key).catch(() => {
        throw new StageRejection(422, `${key} "${name}" is not in this host's images folder; copy it there first`);
      });
    }
    if (await isDirectory(new RunDir(this.deps.dataDir, guest.id).dir)) {
      throw new StageRejection(409, `guest ${guest.id} already has files on this host (a move in progress, or left over)`);
    }
  }

  async prepareIncoming(source: Guest, live: boolean, facts: OutgoingFacts, listenHost: string): Promise<{ guest: Guest; plan: IncomingPlan }> {
    const runDir = new RunDir(this.deps.dataDir, source.id);
    await mkdir(this.deps.dataDir, { recursive: true });
    await mkdir(runDir.dir).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'EEXIST' ? new StageRejection(409, `guest ${source.id} already has files on this host`) : error;
    });
    let guest: Guest = { ...source, nics: source.nics.map((n) => ({ ...n, device: '' })), vnc: 0 };
    try {
      const disks = [];
      for (const disk of source.disks) {
        const file = runDir.disk(disk.device);
        const bytes = facts.diskBytes[disk.device];
        if (!(bytes > 0)) throw new Error(`the source gave no size for disk ${disk.device}`);
        // Live: the blank disk the source's mirror fills; cold: the upload replaces it.
        if (live) await run(this.deps.options.qemuImg, ['create', '-q', '-f', 'qcow2', file, String(bytes)]);
        disks.push({ ...disk, source: file, volume: path.relative(this.deps.dataDir, file) });
      }
      guest = { ...guest, disks };
      const nics = [];
      for (const [index, nic] of source.nics.entries()) {
        if (!(await isBridge(nic.network))) {
          nics.push({ ...nic, device: '' });
          continue;
        }
        // The source's tap keeps its name until it is removed: on the same host (tests), another one.
        let device = tapName(source.id, index);
        if (await interfaceExists(device)) device = device.replace(/n(\d+)$/, 'm$1');
        if (await interfaceExists(device)) throw new StageRejection(409, `NIC ${nic.name}: tap names ${tapName(source.id, index)} and ${device} are taken on this host`);
        await noteIncomingTap(runDir, device);
        await ensureTap(device, nic.network);
        nics.push({ ...nic, device });
        guest = { ...guest, nics: [...nics, ...guest.nics.slice(nics.length)] };
      }
      guest = { ...guest, nics };
      if (this.deps.options.vnc && !this.deps.options.vncSocket && source.vnc > 0) guest = { ...guest, vnc: await this.deps.allocateVnc(source.id) };
      if (!live) return { guest: { ...guest, state: source.state }, plan: {} };
      guest = { ...guest, state: 'running' };
      return { guest, plan: await this.launchIncoming(guest, runDir, listenHost) };
    } catch (error) {
      await this.abortIncoming(guest).catch((e: unknown) => this.deps.log.warn({ guest: source.id, err: (e as Error).message }, 'could not remove a half-prepared incoming guest'));
      throw error;
    }
  }

  /** A paused QEMU waiting for the memory, its disks exported over NBD. */
  private async launchIncoming(guest: Guest, runDir: RunDir, host: string): Promise<IncomingPlan> {
    const controller = new AbortController();
    const ctx: StageContext = { stage: 'qemu.migration', signal: controller.signal, timeoutMs: 600_000, log: this.deps.log };
    const plan = await this.deps.launchPlan(guest, ctx);
    const args = [...buildCommandLine(guest, runDir, this.deps.options, plan), '-incoming', 'defer'];
    const pid = await launchQemu(this.deps.options.binary, args, runDir);
    const machine = await Machine.attach(guest.id, runDir, pid, this.deps.listener).catch(async (error: Error) => {
      await terminate(pid, 5000).catch(() => undefined);
      throw error;
    });
    this.deps.machines.set(guest.id, machine);
    const [nbdPort, memoryPort] = await incomingPorts(host, this.deps.options);
    await machine.qmp.execute('nbd-server-start', { addr: { type: 'inet', data: { host, port: String(nbdPort) } } });
    const exports: Record<string, string> = {};
    for (const disk of guest.disks) {
      await machine.qmp.execute('nbd-server-add', { device: driveId(disk.device), writable: true });
      exports[disk.device] = driveId(disk.device);
    }
    const uriHost = host.includes(':') ? `[${host}]` : host;
    // MIGRATION events on each state change: the commit waits for the incoming copy's end without polling.
    await machine.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await machine.qmp.execute('migrate-incoming', { uri: `tcp:${uriHost}:${memoryPort}` });
    return advertisedPlan(host, this.deps.options, [nbdPort, memoryPort], exports);
  }

  async writeDisk(guest: Guest, device: string, body: Readable): Promise<void> {
    if (!guest.disks.some((d) => d.device === device)) throw new StageRejection(404, `the moving guest has no disk "${device}"`);
    const file = new RunDir(this.deps.dataDir, guest.id).disk(device);
    const part = `${file}.part`;
    try {
      await pipeline(body, createWriteStream(part));
      // The bytes came from the network: a qcow2 naming a backing or data file must not make this host open another file.
      await checkImageFile(this.deps.options.qemuImg, part).catch((error: unknown) => {
        throw error instanceof ImageRefused ? new StageRejection(422, `disk ${device}: ${error.message}`) : error;
      });
      await rename(part, file);
    } finally {
      await rm(part, { force: true });
    }
  }

  async commitIncoming(guest: Guest, live: boolean): Promise<void> {
    if (!live) {
      const runDir = new RunDir(this.deps.dataDir, guest.id);
      for (const disk of guest.disks) {
        if (!(await pathExists(runDir.disk(disk.device)))) throw new StageRejection(409, `disk ${disk.device} has not arrived`);
      }
      return;
    }
    const machine = this.deps.machines.get(guest.id);
    if (!machine) throw new Error(`the incoming QEMU of guest ${guest.id} is gone`);
    const status = await this.incomingEnd(machine);
    if (status !== 'completed') throw new StageRejection(409, `the incoming migration is "${status ?? 'not started'}", not completed; nothing switched`);
    await machine.qmp.execute('nbd-server-stop');
  }

  /**
   * The incoming copy's state once it has ended. The source's QEMU reports
   * "completed" once it has sent everything, and its agent may ask for the
   * commit while this QEMU still loads the last of the device state: a copy
   * still active is waited for (its MIGRATION event), not refused.
   */
  private async incomingEnd(machine: Machine): Promise<string | undefined> {
    const wakeup = new QmpWakeup(machine.qmp, (event) => event.event === 'MIGRATION' && event.data?.status !== 'active');
    try {
      const deadline = performance.now() + INCOMING_END_MS;
      for (;;) {
        const { status } = await machine.qmp.execute<{ status?: string }>('query-migrate');
        if (status !== 'active' || performance.now() > deadline) return status;
        await wakeup.sleep(100);
      }
    } finally {
      wakeup.dispose();
    }
  }

  async resumeIncoming(guest: Guest): Promise<void> {
    const machine = this.deps.machines.get(guest.id);
    if (!machine) throw new Error(`the QEMU of guest ${guest.id} is gone`);
    // The console connected before the vCPUs run again: nothing it prints is missed (no reset: it goes on, it does not boot).
    await this.deps.consoles.connect(guest.id);
    const status = await machine.status();
    if (status !== 'running') await machine.qmp.execute('cont');
  }

  async abortIncoming(guest: Guest): Promise<void> {
    const runDir = new RunDir(this.deps.dataDir, guest.id);
    const machine = this.deps.machines.get(guest.id);
    if (machine) {
      await machine.qmp.execute('quit').catch(() => undefined);
      if (!(await machine.waitForExit(5000))) await terminate(machine.pid, 5000);
      this.deps.machines.delete(guest.id);
    }
    const stray = await findGuestProcess(runDir);
    if (stray) await terminate(stray, 5000);
    this.deps.consoles.forget(guest.id);
    for (const nic of guest.nics) if (nic.device) await removeTap(nic.device);
    // The taps a prepare cut off by a kill made (the record it left names none).
    await removeIncomingTaps(runDir);
    await rm(runDir.dir, { recursive: true, force: true });
    if (guest.vnc > 0) this.deps.releaseVnc(guest.vnc);
  }
}
