/**
 * One long-lived `virsh` process, fed commands on stdin: a connection to
 * libvirt. Spawning virsh per call costs 20-30 ms (it connects
 * every time); a shell that stays connected answers in 0.2-5 ms, and needs no
 * native module. Commands run one at a time, in order.
 *
 * How a reply is delimited: after each command the shell is sent
 * `echo MARKER` and an empty line. virsh flushes its output only when it
 * reads the next line, so the empty line pushes the marker out; everything
 * between two markers is the command's output. stderr is merged into stdout
 * (by the `2>&1` of the launching sh) so that error lines arrive in order.
 *
 * Reconnecting: virsh itself reconnects after libvirtd restarts, but a
 * command that hit the broken connection fails. Such failures, a dead virsh,
 * or a command that hangs past its timeout end this process; the next
 * command starts a new one (and read-only commands are retried once).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../core/contract/index.js';

/** A command virsh answered with `error: ...`. */
export class VirshError extends Error {
  override readonly name = 'VirshError';
  constructor(
    readonly command: string,
    /** The error lines, without their "error: " prefix. */
    readonly detail: string,
    /** The whole output, for logs. */
    readonly output: string,
  ) {
    super(`virsh ${command}: ${detail}`);
  }
}

/** Output that means the connection to libvirtd is gone, not that the command was wrong. */
const CONNECTION_LOST =
  /Disconnected from .* due to|Failed to reconnect|no valid connection|client socket is closed|Cannot recv data|Cannot write data|failed to connect to the hypervisor|End of file while reading data/i;

const RECONNECTED = /^error: Reconnected to the hypervisor\s*$/;

/** virsh's prompt ("virsh # " as root, "virsh $ " otherwise) and the input line it echoes. */
const PROMPT_LINE = /virsh [#$] [^\n]*\n?/g;

/** Quotes one argument for virsh's own command-line parser (sh-like single quotes). */
export function quoteArg(arg: string): string {
  if (/[\n\r\0]/.test(arg)) throw new Error(`a virsh argument cannot contain a line break: ${JSON.stringify(arg)}`);
  if (/^[A-Za-z0-9_.,:/=+@%-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export interface RunOptions {
  /** The command only reads: retry it once on a fresh connection if the old one was lost. */
  readOnly?: boolean;
  /** Milliseconds before the shell is killed and the command fails. */
  timeoutMs?: number;
}

interface Pending {
  marker: string;
  command: string;
  resolve: (output: string) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class VirshShell {
  private child: ChildProcess | undefined;
  private buffer = '';
  private pending: Pending | undefined;
  /** Serialises commands: virsh answers one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private sequence = 0;
  private readonly token = randomBytes(4).toString('hex');
  /** Processes started so far (1 = never reconnected). */
  spawned = 0;

  constructor(
    private readonly binary: string,
    readonly uri: string,
    private readonly log: Logger,
    private readonly defaultTimeoutMs: number,
  ) {}

  /** PID of the current virsh process, if one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Run one virsh command (argv without "virsh") and return what it printed. */
  run(args: string[], options: RunOptions = {}): Promise<string> {
    const result = this.queue.then(() => this.runWithRetry(args, options));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Stop the virsh process; later commands fail. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    this.kill('the plugin is stopping');
  }

  private async runWithRetry(args: string[], options: RunOptions): Promise<string> {
    try {
      return await this.runOnce(args, options);
    } catch (error) {
      if (options.readOnly && error instanceof VirshError && CONNECTION_LOST.test(error.detail)) {
        this.log.warn({ command: error.command, detail: error.detail }, 'libvirt connection lost; reconnecting and retrying once');
        this.kill('connection lost');
        return this.runOnce(args, options);
      }
      throw error;
    }
  }

  private runOnce(args: string[], options: RunOptions): Promise<string> {
    if (this.closed) return Promise.reject(new Error('the libvirt connection is closed (agent stopping)'));
    const command = args.map(quoteArg).join(' ');
    const child = this.ensureProcess();
    const marker = `__hyperkern_${this.token}_${++this.sequence}__`;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill(`"${command}" took longer than ${timeoutMs} ms`);
      }, timeoutMs);
      this.pending = { marker, command, resolve, reject, timer };
      child.stdin!.write(`${command}\necho ${marker}\n\n`);
    }).then((output) => {
      const errors = output
        .split('\n')
        .filter((line) => line.startsWith('error: '))
        .map((line) => line.slice('error: '.length).trim())
        .filter(Boolean);
      if (errors.length > 0) {
        const error = new VirshError(command, errors.join('; '), output);
        if (CONNECTION_LOST.test(error.detail)) this.kill('connection lost');
        throw error;
      }
      return output;
    });
  }

  private ensureProcess(): ChildProcess {
    if (this.child) return this.child;
    this.spawned += 1;
    // sh merges stderr into stdout so that errors come in order with output.
    const child = spawn('sh', ['-c', 'exec "$0" "$@" 2>&1', this.binary, '-q', '-c', this.uri], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { ...process.env, LC_ALL: 'C', LANG: 'C', VIRSH_DEFAULT_CONNECT_URI: '' },
    });
    this.child = child;
    this.buffer = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onData(child, chunk));
    child.stdin!.on('error', () => undefined); // reported through 'exit'
    child.once('error', (error) => this.onExit(child, `cannot run ${this.binary}: ${error.message}`));
    child.once('exit', (code, signal) => this.onExit(child, `virsh exited (${signal ?? `code ${code}`})`));
    this.log.debug({ pid: child.pid, uri: this.uri, spawned: this.spawned }, 'virsh shell started');
    return child;
  }

  private onData(child: ChildProcess, chunk: string): void {
    if (child !== this.child) return;
    this.buffer += chunk;
    const pending = this.pending;
    if (!pending) return;
    const at = this.buffer.indexOf(pending.marker);
    if (at < 0) return;
    // Skip the echoed "echo MARKER" input line: the marker printed by echo follows it.
    const echoed = this.buffer.indexOf(`echo ${pending.marker}`);
    const end = echoed >= 0 && echoed < at ? this.buffer.indexOf(pending.marker, echoed + 5 + pending.marker.length) : at;
    if (end < 0) return;
    const raw = this.buffer.slice(0, echoed >= 0 && echoed < end ? echoed : end);
    this.buffer = this.buffer.slice(end + pending.marker.length);
    this.pending = undefined;
    clearTimeout(pending.timer);
    // The input line comes back after the prompt, or bare when virsh has no
    // prompt yet (it started while libvirtd was coming up): drop both.
    const output = raw
      .replace(PROMPT_LINE, '')
      .replace(/virsh [#$] $/, '')
      .split('\n')
      // virsh's own notice after it reconnected by itself is not the command's output.
      .filter((line) => line.trim() !== pending.command && line.trim() !== `echo ${pending.marker}` && !RECONNECTED.test(line))
      .join('\n');
    pending.resolve(output);
  }

  private onExit(child: ChildProcess, reason: string): void {
    if (child !== this.child) return;
    this.child = undefined;
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      clearTimeout(pending.timer);
      const said = this.buffer.trim();
      pending.reject(new Error(`libvirt connection (${this.uri}) failed during "${pending.command}": ${reason}${said ? `; virsh said: ${said.slice(-500)}` : ''}`));
    } else if (!this.closed) {
      this.log.warn({ uri: this.uri, reason }, 'virsh shell ended; the next command reconnects');
    }
  }

  /** End the current virsh process (ours, by its handle); the next command starts another. */
  private kill(reason: string): void {
    const child = this.child;
    if (!child) return;
    this.log.debug({ pid: child.pid, reason }, 'stopping virsh shell');
    child.stdin?.end();
    child.kill('SIGKILL');
    this.onExit(child, reason);
  }
}
