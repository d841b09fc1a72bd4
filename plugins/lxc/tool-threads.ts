/**
 * The LXC programs (lxc-start, lxc-stop) run from worker threads, not from
 * the agent's main thread. Node forks a child on the thread that spawns it
 * and blocks that thread until the child has exec'd: on a busy host that is
 * milliseconds per program (4-5 ms each measured with 100 containers started
 * at once on 2 shared cores, over half the main thread's time), which would
 * stall every request and job meanwhile. A few threads share that wait; the
 * main thread only posts a message. Threads start on first use and end
 * after IDLE_MS without work, so a host without container work keeps none.
 */
import { Worker } from 'node:worker_threads';

/** Threads at most: forks from more than a couple of threads at once only queue on the kernel's locks of this process's memory. */
const THREADS = 2;

/** A thread with nothing to run for this long ends (a new one starts on the next request). */
const IDLE_MS = 30_000;

export type ToolRequest = { type: 'run'; id: number; file: string; args: string[]; timeoutMs: number } | { type: 'cancel'; id: number };

export interface ToolAnswer {
  id: number;
  stdout: string;
  stderr: string;
  /** execFile's error: its message and code (ENOENT, ABORT_ERR, an exit status...). */
  error?: { message: string; code?: string | number };
}

interface ToolThread {
  worker: Worker;
  pending: Map<number, (answer: ToolAnswer) => void>;
  idleTimer?: NodeJS.Timeout;
}

export class ToolThreads {
  private readonly threads: ToolThread[] = [];
  private nextId = 1;

  /** Runs `file args` on a tool thread; resolves with what it printed (and its error, if it failed), never rejects. */
  run(file: string, args: string[], timeoutMs: number, signal?: AbortSignal): Promise<ToolAnswer> {
    const id = this.nextId++;
    if (signal?.aborted) return Promise.resolve({ id, stdout: '', stderr: '', error: { message: 'The operation was aborted', code: 'ABORT_ERR' } });
    const thread = this.leastBusy();
    clearTimeout(thread.idleTimer);
    thread.worker.ref();
    return new Promise<ToolAnswer>((resolve) => {
      const onAbort = (): void => thread.worker.postMessage({ type: 'cancel', id } satisfies ToolRequest);
      signal?.addEventListener('abort', onAbort, { once: true });
      thread.pending.set(id, (answer) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(answer);
      });
      thread.worker.postMessage({ type: 'run', id, file, args, timeoutMs } satisfies ToolRequest);
    });
  }

  /** Ends every thread (the plugin stops); what they still run is answered as failed. */
  async close(): Promise<void> {
    await Promise.all(this.threads.splice(0).map((thread) => this.end(thread, 'the agent is stopping')));
  }

  private leastBusy(): ToolThread {
    const idle = this.threads.find((t) => t.pending.size === 0);
    if (idle || this.threads.length >= THREADS) return idle ?? this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const thread: ToolThread = { worker: new Worker(new URL('./tool-thread.js', import.meta.url)), pending: new Map() };
    thread.worker.on('message', (answer: ToolAnswer) => {
      const settle = thread.pending.get(answer.id);
      thread.pending.delete(answer.id);
      settle?.(answer);
      if (thread.pending.size === 0) this.idle(thread);
    });
    // A thread that fails (it should not) fails what it was running; the next request gets a new one.
    thread.worker.on('error', (error) => void this.end(thread, `the LXC tool thread failed: ${error.message}`));
    thread.worker.on('exit', () => void this.end(thread, 'the LXC tool thread ended'));
    this.threads.push(thread);
    return thread;
  }

  private idle(thread: ToolThread): void {
    thread.worker.unref();
    thread.idleTimer = setTimeout(() => {
      if (thread.pending.size === 0) void this.end(thread, 'idle');
    }, IDLE_MS).unref();
  }

  private async end(thread: ToolThread, reason: string): Promise<void> {
    const index = this.threads.indexOf(thread);
    if (index >= 0) this.threads.splice(index, 1);
    clearTimeout(thread.idleTimer);
    for (const [id, settle] of thread.pending) settle({ id, stdout: '', stderr: '', error: { message: reason } });
    thread.pending.clear();
    await thread.worker.terminate();
  }
}
