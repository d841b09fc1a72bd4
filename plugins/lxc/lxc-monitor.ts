/**
 * Container state changes as LXC reports them, for every container of this
 * plugin at once: one long-lived `lxc-monitor` process (LXC's monitor
 * daemon relays each container's state changes to it), read line by line.
 * Not a process per guest, not polling. It is started again if it ends.
 *
 * Lines look like: 'hk-<id>' changed state to [STOPPED]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../../core/contract/index.js';
import { CONTAINER_NAME_PREFIX } from './container-paths.js';
import { endingWithAgent } from './parent-death.js';

export type LxcStateName = 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'ABORTING' | 'FREEZING' | 'FROZEN' | 'THAWED';

export type StateListener = (name: string, state: LxcStateName) => void;

const LINE = /^'([^']+)' changed state to \[([A-Z]+)\]$/;

export class LxcMonitor {
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Waiters for a state of one container. */
  private readonly waiters = new Map<string, Set<{ states: readonly LxcStateName[]; resolve: () => void }>>();

  constructor(
    private readonly program: string,
    private readonly lxcPath: string,
    private readonly log: Logger,
    private readonly listener: StateListener,
  ) {}

  /** Starts listening; resolves once lxc-monitor runs (its first events may come after). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.spawn();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    if (child?.pid !== undefined && child.exitCode === null) child.kill('SIGTERM');
  }

  /** Resolves when `name` reports one of `states`; `cancel` drops the wait. */
  waitFor(name: string, states: readonly LxcStateName[]): { done: Promise<void>; cancel: () => void } {
    let entry!: { states: readonly LxcStateName[]; resolve: () => void };
    const done = new Promise<void>((resolve) => {
      entry = { states, resolve };
    });
    const set = this.waiters.get(name) ?? new Set();
    set.add(entry);
    this.waiters.set(name, set);
    const cancel = (): void => {
      set.delete(entry);
      if (set.size === 0 && this.waiters.get(name) === set) this.waiters.delete(name);
    };
    return { done: done.then(cancel), cancel };
  }

  private spawn(): Promise<void> {
    return new Promise((resolve) => {
      // Only this plugin's containers (lxc-monitor anchors the regex itself: "^(...)$").
      // Ended by the kernel when the agent dies (kill -9 included): an orphan would wait for its next event to die of SIGPIPE.
      const [file, ...args] = endingWithAgent([this.program, '-P', this.lxcPath, '-n', `${CONTAINER_NAME_PREFIX}.*`], 'SIGTERM');
      const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      child.once('spawn', () => resolve());
      child.once('error', (error) => {
        this.log.error({ err: error.message }, 'lxc-monitor could not run; container exits are seen only at the next action or agent start');
        resolve();
      });
      createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
      createInterface({ input: child.stderr! }).on('line', (line) => this.log.warn({ line }, 'lxc-monitor'));
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        if (this.stopped) return;
        this.log.warn({ code, signal }, 'lxc-monitor ended; starting it again in 1 s');
        this.restartTimer = setTimeout(() => void this.spawn(), 1000);
      });
    });
  }

  private onLine(line: string): void {
    const match = LINE.exec(line.trim());
    if (!match) return;
    const [, name, state] = match as unknown as [string, string, LxcStateName];
    for (const waiter of [...(this.waiters.get(name) ?? [])]) if (waiter.states.includes(state)) waiter.resolve();
    this.listener(name, state);
  }
}
