/**
 * The simulator: an in-memory hypervisor implementing every lifecycle and
 * metrics stage with real state transitions, optional delays and failure
 * injection. It manages no real machine. It lets the whole API run on any
 * host, and it is the backend of the kernel's tests and benchmarks.
 *
 * Per-guest test hooks, through guest metadata:
 *   simulator.acpi = "ignore"   the guest ignores the power button (shutdown times out)
 *   simulator.fail = "<action>" that action's stage fails for this guest
 *   simulator.delay.<action> = "<ms>"  that action's stage takes this long
 *   simulator.download = "chunked"      snapshot downloads have no Content-Length
 *   simulator.download = "fail-midway"  snapshot downloads break off halfway
 * Snapshot actions (createSnapshot...) take the same fail and delay hooks.
 * Its console is a line-echo shell with a boot banner (simulated-console.ts).
 */
import { inject, injectable } from 'tsyringe';
import {
  LIFECYCLE,
  PLUGIN_API_VERSION,
  SNAPSHOT_LIFECYCLE,
  consoleStage,
  snapshotDownloadStage,
  snapshotStage,
  Tokens,
  definePlugin,
  hypervisorBackendStages,
  type ActionStage,
  type ConsoleRequest,
  type GuestConsole,
  type HypervisorBackendHandlers,
  type Guest,
  type GuestRequest,
  type Logger,
  type MetricsStage,
  type PluginInstance,
  type SnapshotResponse,
  type SnapshotStageRequest,
  type StageContext,
} from '../../core/contract/index.js';
import { SimulatedConsoles } from './simulated-console.js';
import { SimulatedSnapshots } from './simulated-snapshots.js';
import { simulatedActions, simulatorOptions, type SimulatedAction, type SimulatorOptions } from './options.js';
import { SimulatedMachine } from './simulated-machine.js';

@injectable()
export class SimulatorPlugin implements PluginInstance {
  private readonly machines = new Map<string, SimulatedMachine>();
  private readonly snapshots = new SimulatedSnapshots();
  /** The guests' line-echo consoles. */
  readonly consoles: SimulatedConsoles;

  constructor(
    @inject(Tokens.Options) private readonly options: SimulatorOptions,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {
    this.consoles = new SimulatedConsoles(options.consoleLogBytes, (id) => this.machines.get(id)?.state === 'running');
  }

  /**
   * The simulated hypervisor "kept running" while the agent was down: a
   * guest's machine is made from its recorded state when a stage first
   * touches it (see machine()), not for every guest here; listing them all
   * parsed every guest, ~40 ms of the agent's start-up at 10,000 guests.
   */
  async start(): Promise<void> {
    this.log.info('simulator ready (no real machines are managed)');
  }

  async stop(): Promise<void> {
    this.consoles.stop();
  }

  /** The console stage: the guest's machine is made from its record first, so typing reaches a running one. */
  readonly console = (request: ConsoleRequest): GuestConsole => {
    this.machine(request.guest);
    return this.consoles.open(request.guest.id, request.purpose);
  };

  /** One handler per backend stage; the manifest makes them its stages. */
  readonly handlers: HypervisorBackendHandlers = {
    create: this.lifecycle('create', (guest) => {
      this.machines.set(guest.id, new SimulatedMachine('off'));
      const disks = guest.disks.map((d) => ({ ...d, source: d.source || `sim://${guest.id}/${d.device}`, size: d.size || 1024 }));
      return { ...guest, disks, state: 'off' };
    }),
    start: this.lifecycle('start', (guest, m) => {
      this.expect(m, 'start', LIFECYCLE.start.from);
      const resumed = m.state === 'suspended';
      m.transition(LIFECYCLE.start.to);
      if (!resumed) this.consoles.boot(guest.id, 'start');
      return { ...guest, state: LIFECYCLE.start.to };
    }),
    shutdown: this.lifecycle('shutdown', async (guest, m, request, ctx) => {
      this.expect(m, 'shutdown', LIFECYCLE.shutdown.from);
      if (guest.metadata['simulator.acpi'] === 'ignore') {
        const seconds = Number(request.args.timeout) || this.options.shutdownTimeoutSeconds;
        await sleep(seconds * 1000, ctx.signal);
        throw new Error(`guest did not power off within ${seconds} s (does it handle ACPI?)`);
      }
      m.transition(LIFECYCLE.shutdown.to);
      this.consoles.halted(guest.id);
      return { ...guest, state: LIFECYCLE.shutdown.to };
    }),
    reboot: this.lifecycle('reboot', (guest, m) => {
      this.expect(m, 'reboot', LIFECYCLE.reboot.from);
      this.consoles.boot(guest.id, 'reboot');
      return { ...guest, state: LIFECYCLE.reboot.to };
    }),
    restart: this.lifecycle('restart', (guest, m) => {
      this.expect(m, 'restart', LIFECYCLE.restart.from);
      m.transition(LIFECYCLE.restart.to);
      this.consoles.boot(guest.id, 'reset');
      return { ...guest, state: LIFECYCLE.restart.to };
    }),
    poweroff: this.lifecycle('poweroff', (guest, m) => {
      // Also from off: a simulated power-off of a powered-off machine is harmless.
      this.expect(m, 'poweroff', [...LIFECYCLE.poweroff.from, 'off']);
      m.transition(LIFECYCLE.poweroff.to);
      return { ...guest, state: LIFECYCLE.poweroff.to };
    }),
    suspend: this.lifecycle('suspend', (guest, m) => {
      this.expect(m, 'suspend', LIFECYCLE.suspend.from);
      m.transition(LIFECYCLE.suspend.to);
      return { ...guest, state: LIFECYCLE.suspend.to };
    }),
    delete: this.lifecycle('delete', (guest, m) => {
      m.transition('off');
      this.machines.delete(guest.id);
      this.snapshots.forget(guest.id);
      this.consoles.forget(guest.id);
      return { ...guest, state: LIFECYCLE.delete.to };
    }),
    cpuMetrics: this.metrics('cpuMetrics', (guest, m) => ({ guest, type: 'cpu', cpu: m.cpu(guest) })),
    nicMetrics: this.metrics('nicMetrics', (guest, m) => ({ guest, type: 'nic', nic: m.nic(guest) })),
    diskMetrics: this.metrics('diskMetrics', (guest, m) => ({ guest, type: 'disk', disk: m.disk(guest) })),
  };

  /** The snapshot stages (docs/snapshots.md "snapshot stage contract"); the kernel has checked guest, disk, state and name. */
  readonly snapshotHandlers = {
    createSnapshot: this.snapshot('createSnapshot', (r, m) => [this.snapshots.create(r.guest, m, r.disk, r.dest || r.id)]),
    listSnapshots: this.snapshot('listSnapshots', (r) => this.snapshots.list(r.guest, r.disk)),
    getSnapshot: this.snapshot('getSnapshot', (r) => this.snapshots.list(r.guest, r.disk).filter((s) => s.id === r.id)),
    deleteSnapshot: this.snapshot('deleteSnapshot', (r) => {
      this.snapshots.remove(r.guest, r.disk, r.id);
      return [];
    }),
    rollbackSnapshot: this.snapshot('rollbackSnapshot', (r, m) => {
      // The kernel checked the state; the simulated machine is the hypervisor's own account.
      this.expect(m, 'roll back', SNAPSHOT_LIFECYCLE.rollbackSnapshot.from);
      return [this.snapshots.rollback(r.guest, m, r.disk, r.id, r.destroyMoreRecent)];
    }),
    downloadSnapshot: async (request: SnapshotStageRequest, ctx: StageContext) => {
      await this.inject('downloadSnapshot', request.guest, ctx);
      const mode = request.guest.metadata['simulator.download'];
      const bytes = this.options.snapshotDownloadBytes;
      return this.snapshots.download(request.guest, request.disk!, request.id, { bytes, chunked: mode === 'chunked', failAfter: mode === 'fail-midway' ? Math.floor(bytes / 2) : undefined });
    },
  };

  health() {
    return { healthy: true, message: 'simulated hypervisor', details: { machines: this.machines.size, snapshotBytesRead: this.snapshots.bytesRead } };
  }

  private machine(guest: Guest): SimulatedMachine {
    let m = this.machines.get(guest.id);
    if (!m) {
      // A guest recorded before this start (or by another backend) runs as
      // its record says; one whose create was cut off (creating, error) has
      // a machine that never ran.
      m = new SimulatedMachine(guest.state === 'creating' || guest.state === 'error' ? 'off' : guest.state);
      this.machines.set(guest.id, m);
    }
    return m;
  }

  private expect(m: SimulatedMachine, action: string, states: readonly string[]): void {
    if (!states.includes(m.state)) throw new Error(`cannot ${action} a guest that is ${m.state}`);
  }

  /**
   * Delay and failure injection before a stage's work: undefined when the
   * stage has neither delay nor failure (it then runs in the same tick, with
   * no promise of its own), else the promise of the delay, rejected when the
   * stage is to fail. A failure without a delay throws here.
   */
  private inject(action: SimulatedAction, guest: Guest, ctx: StageContext): Promise<void> | undefined {
    const delay = Number(guest.metadata[DELAY_KEYS[action]] ?? this.options.delays[action] ?? 0);
    if (delay > 0) return sleep(delay, ctx.signal).then(() => this.failIfInjected(action, guest));
    this.failIfInjected(action, guest);
    return undefined;
  }

  private failIfInjected(action: SimulatedAction, guest: Guest): void {
    const failure = guest.metadata['simulator.fail'] === action ? `simulated failure of ${action}` : this.options.failures[action];
    if (failure) throw new Error(failure);
  }

  private lifecycle(
    action: SimulatedAction,
    transition: (guest: Guest, machine: SimulatedMachine, request: GuestRequest, ctx: StageContext) => Guest | Promise<Guest>,
  ): ActionStage {
    return async (request, ctx) => {
      await this.inject(action, request.guest, ctx);
      return { guest: await transition(request.guest, this.machine(request.guest), request, ctx) };
    };
  }

  private snapshot(action: SimulatedAction, act: (request: SnapshotStageRequest, machine: SimulatedMachine) => SnapshotResponse['snapshots']) {
    return async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => {
      await this.inject(action, request.guest, ctx);
      return { snapshots: act(request, this.machine(request.guest)) };
    };
  }

  /** A metrics read answers in the call's own tick unless a delay is injected: every metrics request and scrape passes here. */
  private metrics(action: SimulatedAction, read: (guest: Guest, machine: SimulatedMachine) => ReturnType<MetricsStage>): MetricsStage {
    return (request, ctx) => {
      const delayed = this.inject(action, request.guest, ctx);
      if (delayed) return delayed.then(() => read(request.guest, this.machine(request.guest)));
      return read(request.guest, this.machine(request.guest));
    };
  }
}

/** The metadata key of each action's delay hook, made once rather than per call. */
const DELAY_KEYS = Object.fromEntries(simulatedActions.map((action) => [action, `simulator.delay.${action}`])) as Record<SimulatedAction, string>;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export default definePlugin({
  id: 'simulator',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'In-memory simulated hypervisor (no real guests)',
  options: simulatorOptions,
  create: SimulatorPlugin,
  // Its start resumes a suspended guest too; every other stage serves the action it is named after.
  serves: { start: ['start', 'resume'] },
  stages: (simulator) => ({
    ...hypervisorBackendStages(simulator.handlers),
    createSnapshot: snapshotStage(simulator.snapshotHandlers.createSnapshot),
    listSnapshots: snapshotStage(simulator.snapshotHandlers.listSnapshots),
    getSnapshot: snapshotStage(simulator.snapshotHandlers.getSnapshot),
    deleteSnapshot: snapshotStage(simulator.snapshotHandlers.deleteSnapshot),
    rollbackSnapshot: snapshotStage(simulator.snapshotHandlers.rollbackSnapshot),
    downloadSnapshot: snapshotDownloadStage(simulator.snapshotHandlers.downloadSnapshot),
    console: consoleStage(simulator.console),
  }),
});
