/**
 * One child process running a plugin, seen from the kernel: it is spawned,
 * greeted (`hello`), and then only spoken to through RPC. Its stderr is the
 * plugin's log: JSON lines are re-logged at their level, anything else as
 * a warning. The child's death or a broken channel is reported once, with
 * a reason that names the plugin, to whoever supervises it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageOf } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import type { GuestDirectory, PluginHealth } from '../contract/plugin-api.js';
import {
  ChildMethods,
  ChildNotifications,
  ISOLATION_PROTOCOL_VERSION,
  KernelMethods,
  checkStageMap,
  type HelloParams,
  type HelloResult,
  type InitParams,
  type InitResult,
  type StageParams,
} from './protocol.js';
import { ChannelClosedError, RpcPeer, describe } from './rpc-peer.js';
import { IncomingStreams } from './byte-streams.js';
import type { Readable } from 'node:stream';

export interface ChildSpec {
  /** How messages name this plugin, e.g. `isolated plugin "sim"`. */
  label: string;
  /** Program and arguments. */
  argv: string[];
  cwd: string;
  /** For the built-in TypeScript child: the plugin module to import. */
  module?: string;
  log: AgentLogger;
  /** Answers the child's guests.* calls. */
  guests: GuestDirectory;
  handshakeTimeoutMs: number;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const PINO_LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export class PluginChild {
  readonly exited: Promise<ChildExit>;
  private exit: ChildExit | undefined;
  /** Why the kernel killed it, when it did. */
  private killReason: string | undefined;
  private failureListeners: Array<(reason: string) => void> = [];
  private failed = false;
  private failureReason: string | undefined;
  manifest!: HelloResult;

  private constructor(
    private readonly spec: ChildSpec,
    private readonly process: ChildProcess,
    private readonly peer: RpcPeer,
    private readonly streams: IncomingStreams,
  ) {
    this.exited = new Promise((resolve) => {
      process.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
        this.streams.failAll(new Error(`${this.describeExit()} during a stream`));
        this.fail(this.describeExit());
      });
    });
  }

  /** Spawn the child and complete `hello`; the child is killed if that fails. */
  static async spawn(spec: ChildSpec): Promise<PluginChild> {
    const [program, ...args] = spec.argv;
    const processHandle = spawn(program, args, { cwd: spec.cwd, env: process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const spawnError = new Promise<never>((_, reject) =>
      processHandle.once('error', (error: NodeJS.ErrnoException) =>
        reject(new Error(`${spec.label}: cannot run ${program}: ${error.code ?? error.message}${error.code === 'ENOENT' ? ' (check "command" in the config; relative paths start from the config file\'s folder)' : ''}`)),
      ),
    );
    spawnError.catch(() => undefined);
    let child!: PluginChild;
    // Stream notifications arrive through the peer and are answered through it: made before it, bound after.
    let notify: (method: string, params: unknown[]) => void = () => undefined;
    const streams = new IncomingStreams((method, params) => notify(method, params), spec.label);
    const peer = new RpcPeer({
      input: processHandle.stdout!,
      output: processHandle.stdin!,
      methods: {
        [KernelMethods.guestsList]: () => spec.guests.list(),
        [KernelMethods.guestsGet]: ([id]) => spec.guests.get(String(id)),
        [KernelMethods.guestsObserve]: ([id, change, reason]) => {
          if (typeof change !== 'object' || change === null) throw new Error('guests.observe needs [id, change map, reason]');
          return spec.guests.observe(String(id), change as object, String(reason ?? 'reported by isolated plugin'));
        },
      },
      notifications: streams.handlers,
      onClose: (reason) => {
        streams.failAll(new Error(`${spec.label}: the channel closed during a stream (${reason.message})`));
        if (!(reason instanceof ChannelClosedError)) {
          child?.kill(`it broke the protocol: ${reason.message}`);
          return;
        }
        // A closed pipe usually means the process is exiting, and its exit
        // status is the better report; one that lives on without its channel
        // is of no use and is ended.
        setTimeout(() => child?.kill('it closed its end of the channel'), 1000).unref();
      },
    });
    notify = (method, params) => peer.notify(method, params);
    child = new PluginChild(spec, processHandle, peer, streams);
    child.forwardStderr();
    try {
      const hello = await Promise.race([
        peer.call<HelloResult>(ChildMethods.hello, [{ protocol: ISOLATION_PROTOCOL_VERSION, module: spec.module } satisfies HelloParams], { timeoutMs: spec.handshakeTimeoutMs }),
        spawnError,
      ]);
      child.manifest = checkHello(hello, spec.label);
      return child;
    } catch (error) {
      child.kill('its handshake failed');
      // A program that could not be spawned has no exit to wait for.
      if (processHandle.pid !== undefined) await Promise.race([child.exited, sleep(2000)]);
      throw new Error(`${spec.label}: handshake failed: ${child.exit ? `${messageOf(error)} (${child.describeExit()})` : messageOf(error)}`, { cause: error });
    }
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get inFlight(): number {
    return this.peer.inFlight;
  }

  /** Called once when the child exits or its channel breaks (at once if that already happened). */
  onFailure(listener: (reason: string) => void): void {
    if (this.failureReason !== undefined) queueMicrotask(() => listener(this.failureReason!));
    else this.failureListeners.push(listener);
  }

  async init(params: InitParams): Promise<InitResult> {
    const result = await this.request<InitResult | null>(ChildMethods.init, [params], { timeoutMs: this.spec.handshakeTimeoutMs }, 'init');
    if (result?.stages !== undefined) {
      const problem = checkStageMap(result.stages);
      if (problem) throw new Error(`${this.spec.label} answered init with bad stages: ${problem}`);
    }
    return result ?? {};
  }

  async start(): Promise<void> {
    await this.request(ChildMethods.start, [], { timeoutMs: this.spec.handshakeTimeoutMs }, 'start');
  }

  /** Run a stage; the child is told to cancel when `signal` aborts. */
  stage(params: StageParams, signal: AbortSignal, onAbandon: () => void): Promise<unknown> {
    return this.request(ChildMethods.stage, [params], {
      signal,
      onAbandon: (msgid) => {
        this.peer.notify(ChildNotifications.cancel, [msgid]);
        onAbandon();
      },
    }, `stage ${params.stage}`);
  }

  /** The stream a streaming stage answered (`{stream, size?}`), read from this child's notifications. */
  openStream(answer: unknown, stage: string): { stream: Readable; size?: number } {
    const opened = this.streams.accept(answer);
    if (!opened) throw new Error(`${this.spec.label} answered stage ${stage} with ${describe(answer)}; a streaming stage answers {stream: id, size?: bytes}`);
    return opened;
  }

  /** Streams open now (for health). */
  get openStreams(): number {
    return this.streams.size;
  }

  ping(timeoutMs: number): Promise<unknown> {
    return this.request(ChildMethods.ping, [], { timeoutMs }, 'ping');
  }

  async health(timeoutMs: number): Promise<PluginHealth> {
    const result = await this.request<PluginHealth>(ChildMethods.health, [], { timeoutMs }, 'health');
    if (typeof result !== 'object' || result === null || typeof result.healthy !== 'boolean') {
      return { healthy: false, message: `${this.spec.label} answered its health check with ${describe(result)}` };
    }
    return result;
  }

  /**
   * Ask the plugin to stop, close its input, and make sure the process is
   * gone: SIGTERM, then SIGKILL, if it takes longer than `graceMs`.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.exit) return;
    try {
      await this.peer.call(ChildMethods.stop, [], { timeoutMs: graceMs });
    } catch (error) {
      this.spec.log.warn({ plugin: this.spec.label, error: messageOf(error) }, 'isolated plugin did not answer stop; terminating it');
    }
    this.failed = true; // a stop is no failure to report
    this.peer.end();
    if (await this.waitExit(2000)) return;
    this.process.kill('SIGTERM');
    if (await this.waitExit(2000)) return;
    this.process.kill('SIGKILL');
    await this.exited;
  }

  /** Kill now (hung, or broke the protocol); the reason shows in errors. */
  kill(reason: string): void {
    if (this.exit) return;
    this.killReason ??= reason;
    this.process.kill('SIGKILL');
  }

  describeExit(): string {
    const pid = this.process.pid ?? '?';
    if (this.killReason) return `${this.spec.label} (pid ${pid}) was killed because ${this.killReason}`;
    if (!this.exit) return `${this.spec.label} (pid ${pid}) is running`;
    const how = this.exit.signal ? `was killed by ${this.exit.signal}` : `exited with code ${this.exit.code}`;
    return `${this.spec.label} (pid ${pid}) ${how}`;
  }

  private async waitExit(ms: number): Promise<boolean> {
    const ac = new AbortController();
    const done = await Promise.race([this.exited.then(() => true), sleep(ms, false, { signal: ac.signal }).catch(() => false)]);
    ac.abort();
    return done;
  }

  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = true;
    this.failureReason = reason;
    for (const listener of this.failureListeners) listener(reason);
  }

  /** A call whose failure by a dead or broken child names the plugin and what it was doing. */
  private async request<T>(method: string, params: unknown[], options: Parameters<RpcPeer['call']>[2], doing: string): Promise<T> {
    try {
      return await this.peer.call<T>(method, params, options);
    } catch (error) {
      if (this.peer.closed && error === this.peer.closed) {
        // The exit event may trail the closed pipe by a moment; its code makes the better message.
        await Promise.race([this.exited, sleep(500)]);
        throw new Error(`${this.describeExit()} during ${doing}`, { cause: error });
      }
      throw error;
    }
  }

  private forwardStderr(): void {
    const lines = createInterface({ input: this.process.stderr!, crlfDelay: Infinity });
    const log = this.spec.log.child({ childPid: this.process.pid });
    lines.on('line', (line) => {
      if (!line.trim()) return;
      const entry = parseLogLine(line);
      if (entry) {
        const { level, msg, fields } = entry;
        fields.plugin ??= this.spec.label;
        (log as unknown as Record<string, (o: object, m: string) => void>)[level](fields, msg);
      } else {
        log.warn({ plugin: this.spec.label, stderr: line.length > 4000 ? `${line.slice(0, 4000)}...` : line }, 'isolated plugin wrote to stderr');
      }
    });
  }
}

function parseLogLine(line: string): { level: string; msg: string; fields: Record<string, unknown> } | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    const { level: rawLevel, msg, time: _time, pid: _pid, hostname: _host, name: _name, ...fields } = parsed;
    const level = typeof rawLevel === 'number' ? PINO_LEVELS[rawLevel] : typeof rawLevel === 'string' ? rawLevel.toLowerCase() : undefined;
    if (!level || !LOG_LEVELS.has(level)) return undefined;
    return { level, msg: typeof msg === 'string' ? msg : '', fields };
  } catch {
    return undefined;
  }
}

function checkHello(hello: unknown, label: string): HelloResult {
  if (typeof hello !== 'object' || hello === null) throw new Error(`${label} answered hello with ${describe(hello)}; expected its manifest map`);
  const h = hello as Partial<HelloResult>;
  if (h.protocol !== ISOLATION_PROTOCOL_VERSION) throw new Error(`${label} speaks isolation protocol ${describe(h.protocol)}; this kernel speaks ${ISOLATION_PROTOCOL_VERSION}`);
  if (typeof h.id !== 'string' || !/^[a-z][a-z0-9-]*$/.test(h.id)) throw new Error(`${label} answered hello with id ${describe(h.id)}; it must be lower-case letters, digits and dashes`);
  if (typeof h.version !== 'string') throw new Error(`${label} answered hello without a "version" string`);
  if (typeof h.pluginApi !== 'number') throw new Error(`${label} answered hello without a "pluginApi" number`);
  const problem = checkStageMap(h.stages);
  if (problem) throw new Error(`${label} answered hello with bad stages: ${problem}`);
  return h as HelloResult;
}
