/**
 * The QEMU backend: guests as qemu-system-x86_64 processes driven over QMP,
 * with no libvirt in between. Stages map the mistify lifecycle onto QMP
 * (see docs/qemu.md); QMP events and process exits keep each guest's state
 * true to the hypervisor; guests outlive the agent and are found again at
 * start.
 */
import { mkdir, rm } from 'node:fs/promises';
import { inject, injectable } from 'tsyringe';
import {
  checkUnixSocketPath,
  isInterfaceName,
  ObserveQueue,
  StageRejection,
  tapName,
  timeoutArg,
  Tokens,
  type Guest,
  type GuestDirectory,
  type GuestState,
  type GuestMetricsRequest,
  type GuestMetricsResponse,
  type GuestNicMetrics,
  type GuestRequest,
  type GuestResponse,
  type Logger,
  type PluginHealth,
  type PluginInstance,
  type HypervisorBackendHandlers,
  type StageContext,
  type ConsoleRequest,
  type GuestConsole,
  type VncEndpoint,
  type VncRequest,
  type GuestMigrator,
} from '../../core/contract/index.js';
import { buildCommandLine, KERNEL_METADATA, type LaunchPlan } from './command-line.js';
import { createDisks, findImage } from './disk-images.js';
import { run } from './exec.js';
import { Machine, WaitTimeout, type MachineListener } from './machine.js';
import { isDirectory, reattach } from './reattach.js';
import { machineEvents } from './machine-events.js';
import { QemuConsoles } from './qemu-consoles.js';
import { checkLaunchable } from './launch-checks.js';
import { cpuMetrics, diskMetrics, nicMetrics } from './metrics.js';
import { resolveOptions, type QemuOptions, type ResolvedQemuOptions } from './options.js';
import { GuestSnapshots } from './guest-snapshots.js';
import { findGuestProcess, launchQemu, terminate } from './qemu-process.js';
import { RunDir } from './run-dir.js';
import { snapshotHandlers } from './snapshot-stages.js';
import { ensureTap, isBridge, removeTap } from './taps.js';
import { VncPorts } from './vnc-ports.js';
import { qemuMigrator } from './migrator.js';
import { vncEndpointOf } from './vnc-display.js';

@injectable()
export class QemuPlugin implements PluginInstance {
  private readonly options: ResolvedQemuOptions;
  /** Attached QEMU processes by guest id. */
  private readonly machines = new Map<string, Machine>();
  /** VNC ports of guests being created (vnc-ports.ts). */
  private readonly vncPorts: VncPorts;
  /** What QEMU reports on its own, recorded in event order. */
  private readonly observations: ObserveQueue;
  /** The guests' serial consoles (the console stage). */
  private readonly consoles: QemuConsoles;
  private readonly listener: MachineListener;
  private version = 'unknown';
  /** Disk and guest snapshots (qcow2 internal): QMP while a guest runs, qemu-img while it is off. */
  readonly snapshots: GuestSnapshots;
  /** The snapshot stages, on `snapshots` (the manifest makes them its stages). */
  readonly snapshotHandlers: ReturnType<typeof snapshotHandlers>;
  /** Moving guests between agents: the migration stage's answer (migrator.ts). */
  readonly migrator: GuestMigrator;

  /** One handler per backend stage; the manifest makes them its stages. */
  readonly handlers: HypervisorBackendHandlers = {
    create: (request: GuestRequest, ctx: StageContext) => this.create(request, ctx),
    start: (request: GuestRequest, ctx: StageContext) => this.startGuest(request, ctx),
    shutdown: (request: GuestRequest, ctx: StageContext) => this.shutdown(request, ctx),
    reboot: (request: GuestRequest, ctx: StageContext) => this.reboot(request, ctx),
    restart: (request: GuestRequest) => this.restart(request),
    poweroff: (request: GuestRequest) => this.poweroff(request),
    suspend: (request: GuestRequest) => this.suspend(request),
    delete: (request: GuestRequest, ctx: StageContext) => this.delete(request, ctx),
    cpuMetrics: (request: GuestMetricsRequest) => this.cpuMetrics(request),
    diskMetrics: (request: GuestMetricsRequest) => this.diskMetrics(request),
    nicMetrics: (request: GuestMetricsRequest) => this.nicMetrics(request),
  };

  /**
   * create, sync: a 400 naming the field for anything start would refuse
   * (NIC names, models, MACs, disk buses), before any guest or job exists.
   */
  readonly checkCreate = ({ guest }: GuestRequest): void => checkLaunchable(guest, this.options.machine);

  constructor(
    @inject(Tokens.Options) options: QemuOptions,
    @inject(Tokens.Logger) private readonly log: Logger,
    @inject(Tokens.DataDir) private readonly dataDir: string,
    @inject(Tokens.Guests) private readonly guests: GuestDirectory,
    @inject(Tokens.PluginId) private readonly id: string,
  ) {
    this.options = resolveOptions(options);
    this.snapshots = new GuestSnapshots(this.options.qemuImg, (id) => this.machines.get(id));
    this.snapshotHandlers = snapshotHandlers(this.snapshots, (id) => new RunDir(this.dataDir, id).dir);
    this.observations = new ObserveQueue(guests, log, 'QEMU');
    this.vncPorts = new VncPorts(guests);
    this.consoles = new QemuConsoles(dataDir, this.options.consoleLogBytes, log);
    this.listener = machineEvents({ machines: this.machines, consoles: this.consoles, log, observe: this.listenerObserve, drained: () => this.observations.drained() });
    const removeCtx = { stage: 'qemu.migration', signal: new AbortController().signal, timeoutMs: 120_000, log };
    this.migrator = qemuMigrator({ options: this.options, qemuImg: this.options.qemuImg, dataDir, machines: this.machines, listener: this.listener, consoles: this.consoles, log,
      launchPlan: (guest, ctx) => this.launchPlan(guest, ctx), allocateVnc: (id) => this.vncPorts.allocate(id, this.options), releaseVnc: (port) => this.vncPorts.release(port),
      removeGuest: async (guest) => void (await this.delete({ guest, action: 'delete', args: {} }, removeCtx)) });
  }

  /** The console stage: the guest's ttyS0 (console.sock) and its log (console.log). */
  readonly console = ({ guest, purpose }: ConsoleRequest): GuestConsole => this.consoles.open(guest.id, purpose);

  // ---- plugin lifecycle ----------------------------------------------------

  /** Checks QEMU is installed and reattaches to the guests that still run. */
  async start(): Promise<void> {
    const { stdout } = await run(this.options.binary, ['--version']).catch((error: Error) => {
      throw new Error(`QEMU plugin "${this.id}": ${error.message}`);
    });
    this.version = stdout.split('\n')[0]?.trim() ?? 'unknown';
    this.log.info(
      { qemu: this.version, accel: this.options.accel, accelSource: this.options.accelSource, dataDir: this.dataDir, imagesDir: this.options.imagesDir },
      'QEMU backend ready',
    );
    const guests = await this.guests.list();
    const deps = { dataDir: this.dataDir, machines: this.machines, listener: this.listener, consoles: this.consoles, log: this.log, observe: this.listenerObserve };
    await Promise.all(guests.map((guest) => reattach(guest, deps)));
  }

  /** Lets go of the QEMU processes without stopping them: guests outlive the agent. */
  async stop(): Promise<void> {
    for (const machine of this.machines.values()) machine.detach();
    this.machines.clear();
    this.consoles.stop();
    await this.observations.drained();
  }

  health(): PluginHealth {
    return {
      healthy: true,
      details: { qemu: this.version, accel: this.options.accel, accelSource: this.options.accelSource, attachedGuests: this.machines.size },
    };
  }

  private observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): void {
    this.observations.observe(id, change, reason);
  }

  private readonly listenerObserve = (id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): void => this.observe(id, change, reason);

  // ---- lifecycle stages ----------------------------------------------------

  private async create({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    // Again here for configs whose create has no qemu.checkCreate: never build a guest start refuses.
    checkLaunchable(guest, this.options.machine);
    const runDir = new RunDir(this.dataDir, guest.id);
    checkUnixSocketPath(runDir.qmpSocket, 'QMP socket');
    checkUnixSocketPath(runDir.serialSocket, 'serial socket');
    checkUnixSocketPath(runDir.consoleSocket, 'console socket');
    await mkdir(this.dataDir, { recursive: true });
    try {
      await mkdir(runDir.dir);
    } catch (error) {
      // Never build over (and on failure remove) files of an existing guest.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`guest ${guest.id} already has a run dir in the QEMU plugin's data dir; refusing to create it again`);
      throw error;
    }
    const createdTaps: string[] = [];
    try {
      const disks = await createDisks(guest, runDir, { qemuImg: this.options.qemuImg, imagesDir: this.options.imagesDir, dataDir: this.dataDir }, ctx.signal);
      const nics = [];
      for (const [index, nic] of guest.nics.entries()) {
        if (await isBridge(nic.network)) {
          const device = nic.device || tapName(guest.id, index);
          if (!isInterfaceName(device)) throw new StageRejection(400, `nic ${nic.name}: device name ${device} is not a Linux interface name`);
          await ensureTap(device, nic.network, ctx.signal);
          createdTaps.push(device);
          nics.push({ ...nic, device });
        } else {
          // No bridge: QEMU's user-mode network (NAT, no host device). An
          // empty device records that choice for start, metrics and delete.
          ctx.log.info({ guest: guest.id, nic: nic.name, network: nic.network }, 'no such bridge; this NIC uses user-mode networking');
          nics.push({ ...nic, device: '' });
        }
      }
      let vnc = 0;
      // On a unix socket, VNC has no port to give the guest.
      if (this.options.vnc && !this.options.vncSocket) {
        vnc = await this.vncPorts.allocate(guest.id, this.options);
      }
      return { guest: { ...guest, disks, nics, vnc, state: 'off' } };
    } catch (error) {
      // Leave nothing behind: a failed create must not hold disk space or taps.
      await Promise.all(createdTaps.map((tap) => removeTap(tap).catch(() => {})));
      await rm(runDir.dir, { recursive: true, force: true });
      throw error;
    }
  }


  private async startGuest({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const machine = this.machines.get(guest.id);
    if (machine) {
      const status = await machine.status();
      if (status === 'paused' || status === 'prelaunch') {
        await machine.qmp.execute('cont');
        return { guest: { ...guest, state: 'running' }, message: 'resumed' };
      }
      if (status === 'running') return { guest: { ...guest, state: 'running' }, message: 'already running' };
      throw new Error(`QEMU of guest ${guest.id} is in run state "${status}"; power it off, then start it`);
    }
    const runDir = new RunDir(this.dataDir, guest.id);
    if (!(await isDirectory(runDir.dir))) {
      throw new StageRejection(409, `guest ${guest.id} has no run dir in the QEMU plugin's data dir; it was not created by QEMU plugin "${this.id}"`);
    }
    // A QEMU we lost track of (e.g. attach failed at agent start) must not be doubled.
    const stray = await findGuestProcess(runDir);
    if (stray) throw new Error(`a QEMU process (${stray}) for guest ${guest.id} already runs but is not attached; power the guest off first`);

    const plan = await this.launchPlan(guest, ctx);
    const args = buildCommandLine(guest, runDir, this.options, plan);
    ctx.signal.throwIfAborted();
    ctx.log.debug({ guest: guest.id, argv: [this.options.binary, ...args] }, 'launching QEMU');
    const pid = await launchQemu(this.options.binary, args, runDir);
    let attached: Machine;
    try {
      attached = await Machine.attach(guest.id, runDir, pid, this.listener);
    } catch (error) {
      await terminate(pid, this.options.poweroffGraceSeconds * 1000).catch(() => {});
      throw new Error(`QEMU started (pid ${pid}) but its QMP socket did not answer, so it was stopped: ${(error as Error).message}`);
    }
    this.machines.set(guest.id, attached);
    // QEMU waits (-S) until the agent holds the console: the boot's first byte reaches every viewer.
    await this.consoles.connect(guest.id);
    this.consoles.reset(guest.id, 'start');
    attached.startingUp = true;
    await attached.qmp.execute('cont');
    // The kernel drops a result that comes after its stage timeout; the guest runs anyway, so say so.
    if (ctx.signal.aborted) this.observe(guest.id, { state: 'running' }, `QEMU started (pid ${pid}) after the start stage timed out`);
    const kvm = await attached.qmp.execute<{ enabled: boolean }>('query-kvm').catch(() => ({ enabled: false }));
    ctx.log.info(
      { guest: guest.id, pid, accel: kvm.enabled ? 'kvm' : 'tcg', configured: this.options.accel, accelSource: this.options.accelSource },
      `QEMU started with ${kvm.enabled ? 'KVM' : 'TCG (software emulation)'}`,
    );
    return { guest: { ...guest, state: 'running' }, message: `QEMU pid ${pid}, accel ${kvm.enabled ? 'kvm' : 'tcg'}` };
  }

  /** Taps, direct-boot kernel and VNC port for a launch, checked against the host as it is now. */
  private async launchPlan(guest: Guest, ctx: StageContext): Promise<LaunchPlan> {
    const taps = new Map<string, string>();
    for (const nic of guest.nics) {
      if (!nic.device) continue;
      // After a host reboot the persistent taps are gone; recreate them.
      await ensureTap(nic.device, nic.network, ctx.signal);
      taps.set(nic.name, nic.device);
    }
    const plan: LaunchPlan = { taps, vncPort: this.options.vnc ? guest.vnc : 0 };
    if (this.options.vnc && this.options.vncSocket) {
      plan.vncSocket = new RunDir(this.dataDir, guest.id).vncSocket;
      checkUnixSocketPath(plan.vncSocket, 'VNC socket');
    }
    const kernel = guest.metadata?.[KERNEL_METADATA.kernel];
    if (kernel) {
      plan.kernel = await findImage(this.options.imagesDir, kernel, 'kernel');
      const initrd = guest.metadata?.[KERNEL_METADATA.initrd];
      if (initrd) plan.initrd = await findImage(this.options.imagesDir, initrd, 'initrd');
    }
    return plan;
  }

  private async shutdown({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const machine = this.machines.get(guest.id);
    if (!machine) return { guest: { ...guest, state: offState(guest) }, message: 'guest was not running' };
    const seconds = timeoutArg(args, this.options.shutdownTimeoutSeconds);
    // A paused guest cannot see the power button.
    if ((await machine.status()) === 'paused') await machine.qmp.execute('cont');
    await machine.qmp.execute('system_powerdown');
    if (!(await machine.waitForExit(seconds * 1000, ctx.signal))) {
      throw new Error(`guest did not power off within ${seconds} s (does it handle ACPI?)`);
    }
    return { guest: { ...guest, state: 'shutdown' }, message: 'guest powered off' };
  }

  private async reboot({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const machine = this.requireMachine(guest, 'reboot');
    const seconds = timeoutArg(args, this.options.rebootTimeoutSeconds);
    if ((await machine.status()) === 'paused') await machine.qmp.execute('cont');
    const reset = machine.waitForEvent(['RESET'], seconds * 1000, ctx.signal);
    reset.catch(() => {}); // awaited below; avoid an unhandled rejection if send-key fails first
    // ctrl-alt-delete asks the guest OS to reboot itself (Linux: SIGINT to init,
    // systemd: ctrl-alt-del.target); QEMU reports RESET when it does.
    await machine.qmp.execute('send-key', {
      keys: [
        { type: 'qcode', data: 'ctrl' },
        { type: 'qcode', data: 'alt' },
        { type: 'qcode', data: 'delete' },
      ],
    });
    try {
      await reset;
    } catch (error) {
      if (error instanceof WaitTimeout) {
        throw new Error(`guest did not reboot within ${seconds} s after ctrl-alt-delete (does its OS reboot on ctrl-alt-del?); use restart for a hard reset`);
      }
      throw error;
    }
    return { guest: { ...guest, state: 'running' }, message: 'guest rebooted' };
  }

  private async restart({ guest }: GuestRequest): Promise<GuestResponse> {
    const machine = this.requireMachine(guest, 'restart');
    await machine.qmp.execute('system_reset');
    // A hard reset of a paused guest should leave it booting, not frozen.
    if ((await machine.status()) === 'paused') await machine.qmp.execute('cont');
    return { guest: { ...guest, state: 'running' }, message: 'guest reset' };
  }

  private async poweroff({ guest }: GuestRequest): Promise<GuestResponse> {
    const stopped = await this.stopProcess(guest);
    return { guest: { ...guest, state: 'off' }, message: stopped ? 'QEMU stopped' : 'guest was not running' };
  }

  private async suspend({ guest }: GuestRequest): Promise<GuestResponse> {
    const machine = this.requireMachine(guest, 'suspend');
    await machine.qmp.execute('stop');
    return { guest: { ...guest, state: 'suspended' }, message: 'vCPUs paused' };
  }

  private async delete({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    await this.stopProcess(guest);
    this.consoles.forget(guest.id);
    for (const nic of guest.nics) if (nic.device) await removeTap(nic.device, ctx.signal);
    // Disks live in the run dir (create refuses outside files), so this removes them too.
    await rm(new RunDir(this.dataDir, guest.id).dir, { recursive: true, force: true });
    this.vncPorts.release(guest.vnc);
    return { guest: { ...guest, state: 'deleted' }, message: 'QEMU guest, disks and taps removed' };
  }

  /** QMP quit, then SIGTERM/SIGKILL. Returns false when no process ran. */
  private async stopProcess(guest: Guest): Promise<boolean> {
    const graceMs = this.options.poweroffGraceSeconds * 1000;
    const machine = this.machines.get(guest.id);
    if (machine) {
      await machine.qmp.execute('quit').catch(() => {}); // QEMU may close the socket before replying
      if (!(await machine.waitForExit(graceMs))) {
        await terminate(machine.pid, graceMs);
        await machine.waitForExit(graceMs);
      }
      return true;
    }
    const stray = await findGuestProcess(new RunDir(this.dataDir, guest.id));
    if (stray) {
      await terminate(stray, graceMs);
      return true;
    }
    return false;
  }

  /** The vnc stage: where the guest's QEMU serves VNC, as it reports (undefined: started without). */
  readonly vnc = ({ guest }: VncRequest): Promise<VncEndpoint | undefined> => vncEndpointOf(this.requireMachine(guest, 'its screen').qmp);

  private requireMachine(guest: Guest, action: string): Machine {
    const machine = this.machines.get(guest.id);
    if (!machine) throw new StageRejection(409, `guest ${guest.id} is not running (state "${guest.state}"); ${action} needs a running guest`);
    return machine;
  }

  // ---- metrics: never behind a lifecycle job --------------------------------

  private metricsMachine(guest: Guest, type: string): Machine {
    const machine = this.machines.get(guest.id);
    if (!machine) throw new StageRejection(409, `guest ${guest.id} is not running (state "${guest.state}"); ${type} metrics need a running QEMU`);
    return machine;
  }

  private async cpuMetrics({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> {
    return { guest, type: 'cpu', cpu: await cpuMetrics(this.metricsMachine(guest, 'cpu')) };
  }

  private async diskMetrics({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> {
    return { guest, type: 'disk', disk: await diskMetrics(this.metricsMachine(guest, 'disk'), guest) };
  }

  private async nicMetrics({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> {
    // Entries for user-mode NICs deliberately carry no numbers (see metrics.ts).
    return { guest, type: 'nic', nic: (await nicMetrics(guest)) as Record<string, GuestNicMetrics> };
  }
}

/** A guest that is not running: keep "shutdown" if that is how it stopped. */
function offState(guest: Guest): GuestState {
  return guest.state === 'shutdown' ? 'shutdown' : 'off';
}
