/**
 * libvirt's domain events, from a long-lived `virsh event --loop --all`
 * process. They tell the plugin when something outside hyperkern (virsh, the
 * guest OS powering itself off, a crash) changed a domain, so the guest's
 * state stays true without polling. The stream is restarted when it ends
 * (libvirtd restarted, connection lost); `onConnect` runs each time so the
 * caller can re-read the states it may have missed meanwhile.
 *
 * The test driver keeps its state per connection, so this separate process
 * sees none of the plugin's test domains; the plugin does not start it there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../../core/contract/index.js';

export interface DomainEvent {
  /** "lifecycle", "reboot", ... */
  kind: string;
  domain: string;
  /** The rest of the line, e.g. "Stopped Shutdown". */
  detail: string;
}

/** "event 'lifecycle' for domain 'NAME': Started Booted" */
const EVENT_LINE = /^event '([^']+)' for domain '(.*?)'(?::\s*(.*))?$/;

export function parseEventLine(line: string): DomainEvent | undefined {
  const match = EVENT_LINE.exec(line.trim());
  return match ? { kind: match[1], domain: match[2], detail: match[3] ?? '' } : undefined;
}

export interface EventStreamHandlers {
  onEvent(event: DomainEvent): void;
  /** The stream (re)started; events may have been missed before. */
  onConnect(): void;
}

export class DomainEventStream {
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  /** Waiters for an event, e.g. reboot waiting for the domain's 'reboot' event. */
  private readonly waiters = new Set<{ match: (e: DomainEvent) => boolean; resolve: () => void }>();
  /** Times the stream was started. */
  starts = 0;

  constructor(
    private readonly binary: string,
    private readonly uri: string,
    private readonly log: Logger,
    private readonly handlers: EventStreamHandlers,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    this.stopped = false;
    this.spawnStream();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    child?.kill('SIGTERM');
  }

  /**
   * Resolves true when an event matching `match` arrives within `timeoutMs`,
   * false otherwise. Register before triggering the event.
   */
  waitFor(match: (e: DomainEvent) => boolean, timeoutMs: number, signal?: AbortSignal): { done: Promise<boolean>; cancel: () => void } {
    let cancel = () => {};
    const done = new Promise<boolean>((resolve) => {
      const waiter = {
        match,
        resolve: () => {
          finish();
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        finish();
        resolve(false);
      }, timeoutMs);
      const onAbort = () => {
        finish();
        resolve(false);
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        signal?.removeEventListener('abort', onAbort);
      };
      cancel = onAbort;
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
    return { done, cancel };
  }

  private spawnStream(): void {
    if (this.stopped) return;
    this.starts += 1;
    const child = spawn(this.binary, ['-q', '-c', this.uri, 'event', '--loop', '--all'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    });
    this.child = child;
    let buffered = '';
    let errors = '';
    let connected = false;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const event = parseEventLine(line);
        if (!event) continue;
        this.failures = 0;
        this.handlers.onEvent(event);
        for (const waiter of [...this.waiters]) if (waiter.match(event)) waiter.resolve();
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => (errors = (errors + chunk).slice(-2000)));
    child.once('error', (error) => this.log.error({ err: error.message }, `cannot run ${this.binary} for libvirt events`));
    // virsh prints nothing when it has registered; a stream alive after a
    // moment is taken as connected, and the caller re-reads states then.
    const settle = setTimeout(() => {
      if (this.child === child) {
        connected = true;
        this.handlers.onConnect();
      }
    }, 300);
    child.once('exit', (code, signal) => {
      clearTimeout(settle);
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopped) return;
      this.failures = connected ? 0 : this.failures + 1;
      // Back off while libvirtd is down: 0.5 s, 1 s, 2 s ... up to 10 s.
      const delay = Math.min(10_000, 500 * 2 ** Math.min(this.failures, 5));
      this.log.warn({ code, signal, errors: errors.trim(), retryInMs: delay }, 'libvirt event stream ended; reconnecting');
      this.restartTimer = setTimeout(() => this.spawnStream(), delay);
    });
  }
}
