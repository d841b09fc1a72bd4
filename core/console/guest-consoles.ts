/**
 * core/console: guests' serial consoles as the kernel serves them: which
 * stage opens a guest's console, one hub per watched guest fanning its
 * backend's stream out to viewers, the console log, single-use tickets, and
 * the console's events.
 * May import: contract, plugins, guests, jobs (action plans), events (event shapes), errors, logger.
 *
 * A guest's console is reached by the kernel directly, not through an
 * action plan: the stage of kind `console` offered by the guest's backend,
 * the plugin whose stage ends the guest's `start` plan (its `create` plan
 * when there is no start). A backend without one (isolated plugins,
 * JSON-RPC sub-agents) answers 501 naming it.
 */
import type { ActionPlans, PlanSet } from '../jobs/action-plan.js';
import { prefixedGuestType, type PrefixedGuestType } from '../jobs/actions.js';
import { Errors, messageOf } from '../errors.js';
import { draft, type EventDraft, type EventPayloads } from '../events/kernel-event.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import { asPluginLogger, type AgentLogger } from '../logger.js';
import type { LoadedPlugin } from '../plugins/plugin-loader.js';
import { runStage, type PlannedStage } from '../plugins/stage-runner.js';
import type { ConsolePurpose, ConsoleRequest, GuestConsole } from '../contract/plugin-api.js';
import { ConsoleHub, type ConsoleViewer } from './console-hub.js';
import { GuestTickets } from './console-tickets.js';

export interface ConsoleOptions {
  /** Unsent output bytes a viewer may have before it is cut off. */
  viewerBufferBytes: number;
  /** Bound of a console stage call (opening, a log read). */
  stageTimeoutMs: number;
}

/** Per guest type (undefined: virtual machines), its console stage or why it has none. */
type Backend = { stage: PlannedStage } | { unsupported: string };

/** A viewer's place in a hub, held from before its WebSocket handshake until it leaves. */
export interface ConsoleSeat {
  /** The viewer arrives (in the handshake's own tick, so no byte it types is lost). */
  attach(viewer: ConsoleViewer): void;
  /** The handshake failed: the seat is given back. */
  cancel(): void;
  write(bytes: Buffer): void;
  leave(viewer: ConsoleViewer, reason: string): void;
}

export class GuestConsoles {
  readonly tickets = new GuestTickets();
  private readonly backends = new Map<PrefixedGuestType | undefined, Backend>();
  private readonly hubs = new Map<string, ConsoleHub>();
  /** Opens in progress, so two viewers arriving together share one backend console. */
  private readonly opening = new Map<string, Promise<ConsoleHub>>();
  private stopping = false;

  constructor(
    private readonly registry: GuestRegistry,
    plans: ActionPlans,
    plugins: LoadedPlugin[],
    private readonly record: (event: EventDraft) => Promise<void>,
    private readonly log: AgentLogger,
    private readonly options: ConsoleOptions,
  ) {
    this.backends.set(undefined, backendOf(plans, plugins, options.stageTimeoutMs));
    for (const [type, set] of Object.entries(plans.byType)) this.backends.set(type as PrefixedGuestType, backendOf(set, plugins, options.stageTimeoutMs));
  }

  /** Checks a console request before any upgrade: 404 for an unknown guest, 501 when its backend has no console. */
  check(guestId: string): void {
    this.stageFor(guestId);
  }

  /**
   * A seat in the guest's hub, the backend's console opened if nobody
   * watched yet. Stage failures come out as 502/504, before any upgrade.
   */
  async seat(guestId: string): Promise<ConsoleSeat> {
    if (this.stopping) throw Errors.shuttingDown('the agent is stopping; attach again when it is back');
    const hub = await this.hub(guestId);
    hub.hold();
    return {
      attach: (viewer) => {
        hub.add(viewer);
        this.emit('console.attached', guestId, { viewer: viewer.id, viewers: hub.size });
      },
      cancel: () => hub.unhold(),
      write: (bytes) => hub.write(bytes),
      leave: (viewer, reason) => hub.remove(viewer, reason),
    };
  }

  /** The last `bytes` bytes of the guest's console log. */
  async readLog(guestId: string, bytes: number): Promise<Buffer> {
    const console = await this.open(guestId, 'log');
    try {
      return await console.readLog(bytes);
    } catch (error) {
      throw Errors.stageFailed(`reading the console log of guest ${guestId} failed: ${messageOf(error)}`, { cause: error });
    } finally {
      console.close();
    }
  }

  /** Every viewer is told why and let go; consoles close (the agent stops). */
  closeAll(reason: string): void {
    this.stopping = true;
    for (const hub of [...this.hubs.values()]) hub.end(reason);
  }

  private hub(guestId: string): Promise<ConsoleHub> {
    const open = this.hubs.get(guestId);
    if (open && !open.isClosed) return Promise.resolve(open);
    let opening = this.opening.get(guestId);
    if (!opening) {
      opening = this.open(guestId, 'view')
        .then((console) => this.makeHub(guestId, console))
        .finally(() => this.opening.delete(guestId));
      this.opening.set(guestId, opening);
    }
    return opening;
  }

  private makeHub(guestId: string, console: GuestConsole): ConsoleHub {
    const hub: ConsoleHub = new ConsoleHub(guestId, console, this.options.viewerBufferBytes, {
      reset: (reason) => this.emit('console.reset', guestId, { reason }),
      detached: (viewer, reason, remaining) => this.emit('console.detached', guestId, { viewer: viewer.id, viewers: remaining, reason }),
      closed: () => {
        if (this.hubs.get(guestId) === hub) this.hubs.delete(guestId);
      },
    });
    this.hubs.set(guestId, hub);
    return hub;
  }

  private async open(guestId: string, purpose: ConsolePurpose): Promise<GuestConsole> {
    const stage = this.stageFor(guestId);
    const guest = this.registry.find(guestId);
    if (!guest) throw Errors.guestNotFound(guestId);
    const request: ConsoleRequest = { guest, purpose, args: stage.args };
    return runStage<GuestConsole>(stage, request, { log: asPluginLogger(this.log) });
  }

  private stageFor(guestId: string): PlannedStage {
    const guest = this.registry.find(guestId);
    if (!guest) throw Errors.guestNotFound(guestId);
    const backend = this.backends.get(prefixedGuestType(guest.type));
    if (!backend || 'unsupported' in backend) {
      throw Errors.consoleUnsupported(`guest ${guestId} has no console: ${backend?.unsupported ?? 'no backend runs guests of its type'}`);
    }
    return backend.stage;
  }

  /** Console events are facts about viewers, not state: written after the fact, never awaited by a viewer. */
  private emit<T extends 'console.attached' | 'console.detached' | 'console.reset'>(type: T, guestId: string, data: EventPayloads[T]): void {
    this.record(draft(type, data, guestId)).catch((error: unknown) => this.log.warn({ guest: guestId, event: type, err: messageOf(error) }, 'console event not recorded'));
  }
}

/** The console stage of the plugin that runs a plan set's guests, or why there is none. */
function backendOf(set: PlanSet, plugins: LoadedPlugin[], timeoutMs: number): Backend {
  const plan = set.lifecycle.get('start') ?? set.lifecycle.get('create');
  const pluginId = plan?.async.at(-1)?.handle.plugin;
  const plugin = plugins.find((p) => p.id === pluginId);
  if (!plugin) return { unsupported: 'no backend plugin runs guests of its type (the config maps no start action)' };
  const entry = Object.entries(plugin.stages).find(([, stage]) => stage.kind === 'console');
  if (entry) {
    const [short, stage] = entry;
    const name = `${plugin.id}.${short}`;
    return { stage: { handle: { name, plugin: plugin.id, kind: 'console', call: (request, ctx) => stage.invoke(request, ctx) }, args: {}, timeoutMs } };
  }
  const what = plugin.manifest.description ? ` (${plugin.manifest.description})` : '';
  const why = plugin.config.isolate || plugin.config.command
    ? 'it runs in a child process, and a console is a live byte stream the isolation protocol does not carry; run the plugin in-process for a console'
    : 'it offers no console stage';
  return { unsupported: `its backend, plugin "${plugin.id}"${what}, has none: ${why} (docs/console.md)` };
}
