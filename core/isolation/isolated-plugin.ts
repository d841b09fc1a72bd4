/**
 * The kernel's stand-in for a plugin that runs in a child process. Its
 * `stages` forward each call over MessagePack-RPC; around that it keeps the
 * child alive: it restarts a child that died or hung, with growing delays,
 * and gives up (reporting unhealthy) on one that keeps crashing, so a broken
 * plugin costs a few restarts, not a restart loop.
 *
 * In-flight calls are bounded by the entry's `maxPending`. Calls beyond it
 * wait in a FIFO queue rather than being refused: the waiting is bounded by
 * each stage's own timeout (a call that cannot start in time fails as a
 * timeout naming the stage), and refusing would make a job's stage fail just
 * because a burst of metrics reads happened to fill the slots.
 */
import path from 'node:path';
import PQueue from 'p-queue';
import { fileURLToPath } from 'node:url';
import { messageOf } from '../errors.js';
import {
  STAGE_KINDS,
  StageRejection,
  Tokens,
  defineStage,
  type ConstructedPlugin,
  type GuestDirectory,
  type PluginHealth,
  type PluginInstance,
  type Stage,
  type StageContext,
  type StageKind,
  type StageRequest,
  type StageSet,
} from '../contract/plugin-api.js';
import { resolvePluginModule, type KernelServices, type PluginSlot } from '../plugins/plugin-loader.js';
import { PluginChild, type ChildSpec } from './plugin-child.js';
import { RemoteError } from './rpc-peer.js';

/** Restart policy; a child up for `windowMs` without crashing starts with a clean slate. */
export const RESTART_POLICY = { firstDelayMs: 200, maxDelayMs: 10_000, windowMs: 60_000, maxCrashesInWindow: 5 };
/** After a stage times out the child must answer a ping this fast, or it is taken for hung. */
const PING_TIMEOUT_MS = 3000;
const HANDSHAKE_TIMEOUT_MS = 20_000;
const HEALTH_TIMEOUT_MS = 3000;
const STOP_GRACE_MS = 10_000;

const CHILD_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'plugin-child-main.js');

type State = 'starting' | 'ready' | 'restarting' | 'failed' | 'stopped';

/** What to run for a config entry: the built-in child for a module, or the entry's command. */
export function childProgram(slot: Pick<PluginSlot, 'config'>, configFile: string): Pick<ChildSpec, 'argv' | 'cwd' | 'module'> {
  if (slot.config.command) {
    const configDir = path.dirname(configFile);
    const [program, ...args] = slot.config.command;
    // "./x" and "../x" are relative to the config file, like a module path; a bare name is looked up in PATH.
    const resolved = program.startsWith('./') || program.startsWith('../') ? path.resolve(configDir, program) : program;
    return { argv: [resolved, ...args], cwd: configDir };
  }
  return { argv: [process.execPath, CHILD_MAIN], cwd: process.cwd(), module: resolvePluginModule(slot.config.module!, configFile) };
}

export class IsolatedPlugin implements PluginInstance {
  /** Forwarders for the stages the first child named at init; every restart must name the same. */
  private stages: StageSet = {};
  private offered: Record<string, StageKind> | undefined;
  private state: State = 'starting';
  private child: PluginChild | undefined;
  private readonly queue: PQueue;
  private readonly crashes: number[] = [];
  private restarts = 0;
  private lastFailure = '';
  private restartTimer: NodeJS.Timeout | undefined;
  private readyWaiters = new Set<{ resolve(child: PluginChild): void; reject(error: Error): void }>();
  private pinging = false;
  private readonly label: string;
  private readonly spec: ChildSpec;

  private constructor(
    private readonly slot: PluginSlot,
    private readonly services: KernelServices,
  ) {
    this.label = `isolated plugin "${slot.id}"`;
    this.queue = new PQueue({ concurrency: slot.config.maxPending });
    this.spec = {
      label: this.label,
      ...childProgram(slot, services.configFile),
      log: services.log,
      guests: services.container.resolve<GuestDirectory>(Tokens.Guests),
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    };
  }

  /** Launch the first child (a plugin that cannot start fails the boot); its stages are those it names. */
  static async create(slot: PluginSlot, services: KernelServices): Promise<ConstructedPlugin> {
    const plugin = new IsolatedPlugin(slot, services);
    plugin.child = await plugin.launch(false);
    return { instance: plugin, stages: plugin.stages };
  }

  async start(): Promise<void> {
    if (this.state !== 'starting' || !this.child) return;
    await this.child.start();
    this.state = 'ready';
    this.services.log.info({ plugin: this.slot.id, pid: this.child.pid, maxPending: this.slot.config.maxPending }, 'isolated plugin ready');
  }

  async health(): Promise<PluginHealth> {
    const details = { isolated: true, pid: this.child?.pid, restarts: this.restarts, inFlight: this.queue.pending, queued: this.queue.size, streams: this.child?.openStreams ?? 0 };
    switch (this.state) {
      case 'failed':
        return { healthy: false, message: this.failedMessage(), details };
      case 'starting':
        return { healthy: false, message: `${this.label} is starting`, details };
      case 'restarting':
        return { healthy: false, message: `${this.label} is restarting after: ${this.lastFailure}`, details };
      case 'stopped':
        return { healthy: false, message: `${this.label} is stopped`, details };
    }
    const child = this.child!;
    try {
      const health = await child.health(HEALTH_TIMEOUT_MS);
      return { ...health, details: { ...health.details, ...details } };
    } catch (error) {
      this.checkResponsive(child);
      return { healthy: false, message: `${this.label} did not answer its health check: ${messageOf(error)}`, details };
    }
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.restartTimer);
    // Calls still queued then find the plugin stopped and fail with that, rather than being dropped unanswered.
    this.rejectWaiters(new Error(`${this.label} is stopping`));
    const child = this.child;
    this.child = undefined;
    await child?.stop(STOP_GRACE_MS);
  }

  private forward<K extends StageKind>(short: string, kind: K): Stage {
    const spec = STAGE_KINDS[kind];
    // An upload's body is a stream in this process; the protocol carries messages, not streams into the child.
    if (kind === 'imageUpload') throw new Error(`${this.label}: stage ${short} is an imageUpload stage, which cannot run isolated; run the plugin in-process`);
    return defineStage(kind, (request, ctx) =>
      this.queue.add(
        async () => {
          const { child, result } = await this.callChild(short, request, ctx);
          // A download's bytes follow the answer as stream notifications (byte-streams.ts).
          const answer = kind === 'snapshotDownload' ? child.openStream(result, short) : result;
          // A child's answer must have the shape its stage kind promises; anything else is the plugin's fault.
          const checked = spec.checkResponse(answer, request);
          if (!checked.ok) throw new Error(`${this.label} answered stage ${short} with ${checked.problem}`);
          return checked.value;
        },
        { signal: ctx.signal },
      ),
    );
  }

  /** One `stage` call to the running child; its refusals stay refusals. */
  private async callChild(short: string, request: StageRequest, ctx: StageContext): Promise<{ child: PluginChild; result: unknown }> {
    const child = await this.readyChild(ctx.signal);
    try {
      const result = await child.stage({ stage: short, request, timeoutMs: ctx.timeoutMs, jobId: ctx.jobId }, ctx.signal, () => this.checkResponsive(child));
      return { child, result };
    } catch (error) {
      if (error instanceof RemoteError) {
        if (error.status !== undefined && error.status >= 400 && error.status < 500) throw new StageRejection(rejectionStatus(error.status), error.message);
        if (error.status === 503) throw new StageRejection(503, error.message);
      }
      throw error;
    }
  }

  /** The running child, waiting (bounded by `signal`) while it restarts. */
  private readyChild(signal: AbortSignal): Promise<PluginChild> {
    if (this.state === 'ready' && this.child) return Promise.resolve(this.child);
    if (this.state === 'failed') return Promise.reject(new Error(this.failedMessage()));
    if (this.state === 'stopped') return Promise.reject(new Error(`${this.label} is stopped`));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (child: PluginChild) => {
          signal.removeEventListener('abort', onAbort);
          resolve(child);
        },
        reject: (error: Error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        this.readyWaiters.delete(waiter);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.readyWaiters.add(waiter);
    });
  }

  /** Spawn, greet and initialise a child; `andStart` for restarts (the kernel starts the first). */
  private async launch(andStart: boolean): Promise<PluginChild> {
    const child = await PluginChild.spawn(this.spec);
    try {
      const init = await child.init({
        id: this.slot.id,
        options: this.slot.options,
        dataDir: this.slot.dataDir,
        logLevel: this.services.log.level,
      });
      const offered = init.stages ?? child.manifest.stages;
      if (this.offered === undefined) {
        // The first child decides the stage set.
        this.offered = offered;
        this.stages = Object.fromEntries(Object.entries(offered).map(([name, kind]) => [name, this.forward(name, kind)]));
      }
      const missing = Object.entries(this.offered).filter(([name, kind]) => offered[name] !== kind).map(([name, kind]) => `${name} (${kind})`);
      if (missing.length) {
        throw new Error(`${this.label} does not offer stage(s) ${missing.join(', ')}; it offers ${Object.entries(offered).map(([n, k]) => `${n} (${k})`).join(', ') || 'none'}`);
      }
      if (andStart) await child.start();
    } catch (error) {
      await child.stop(2000);
      throw error;
    }
    child.onFailure((reason) => this.childFailed(child, reason));
    return child;
  }

  private childFailed(child: PluginChild, reason: string): void {
    if (child !== this.child || this.state === 'stopped') return;
    this.child = undefined;
    this.recordCrash(reason);
  }

  private recordCrash(reason: string): void {
    const now = Date.now();
    this.lastFailure = reason;
    this.crashes.push(now);
    while (this.crashes.length && this.crashes[0] < now - RESTART_POLICY.windowMs) this.crashes.shift();
    if (this.crashes.length >= RESTART_POLICY.maxCrashesInWindow) {
      this.state = 'failed';
      this.services.log.error({ plugin: this.slot.id, crashes: this.crashes.length, reason }, `${this.failedMessage()}`);
      this.rejectWaiters(new Error(this.failedMessage()));
      return;
    }
    this.state = 'restarting';
    const delay = Math.min(RESTART_POLICY.maxDelayMs, RESTART_POLICY.firstDelayMs * 2 ** (this.crashes.length - 1));
    this.services.log.warn({ plugin: this.slot.id, reason, restartInMs: delay, crashesInWindow: this.crashes.length }, 'isolated plugin failed; restarting it');
    this.restartTimer = setTimeout(() => void this.relaunch(), delay);
  }

  private async relaunch(): Promise<void> {
    if (this.state !== 'restarting') return;
    try {
      const child = await this.launch(true);
      if (this.state !== 'restarting') {
        await child.stop(2000);
        return;
      }
      this.child = child;
      this.state = 'ready';
      this.restarts += 1;
      this.services.log.info({ plugin: this.slot.id, pid: child.pid, restarts: this.restarts }, 'isolated plugin restarted');
      for (const waiter of this.readyWaiters) waiter.resolve(child);
      this.readyWaiters.clear();
    } catch (error) {
      if (this.state === 'restarting') this.recordCrash(`restart failed: ${messageOf(error)}`);
    }
  }

  /**
   * A stage was given up on (timeout). A child whose event loop still turns
   * answers a ping; one that does not is hung, and is killed so that it can
   * be restarted instead of holding every later call.
   */
  private checkResponsive(child: PluginChild): void {
    if (this.pinging || this.state !== 'ready' || child !== this.child) return;
    this.pinging = true;
    child
      .ping(PING_TIMEOUT_MS)
      .catch((error) => {
        if (child === this.child) child.kill(`it stopped answering (no answer to a ping within ${PING_TIMEOUT_MS / 1000} s after a stage timed out: ${messageOf(error)})`);
      })
      .finally(() => (this.pinging = false));
  }

  private failedMessage(): string {
    return `${this.label} failed ${this.crashes.length} times within ${RESTART_POLICY.windowMs / 1000} s and is no longer restarted; last failure: ${this.lastFailure}. Fix the plugin, then restart the agent`;
  }

  private rejectWaiters(error: Error): void {
    for (const waiter of this.readyWaiters) waiter.reject(error);
    this.readyWaiters.clear();
  }
}

function rejectionStatus(status: number): 400 | 404 | 409 | 422 {
  return status === 404 || status === 409 || status === 422 ? status : 400;
}
