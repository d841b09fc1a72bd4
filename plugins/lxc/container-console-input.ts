/**
 * Typing into a container's console: an `lxc-console -t 0` child, its
 * stdin a pipe. LXC's monitor (the `[lxc monitor]` process beside each
 * container, not the agent) holds the console's pty; lxc-console asks it
 * over the container's command socket for a proxy pty and relays its stdin
 * into it. It needs no terminal of its own (measured: attach, type and
 * detach in 3 ms), so no pty helper (script, socat, python's pty) is
 * involved. It ends when its stdin closes, so an agent that dies (kill -9)
 * lets go of the console with it, and the next agent attaches anew while
 * the container keeps running.
 *
 * LXC lets one such client attach at a time (a second one is refused), and
 * lxc-console reads Ctrl-a as its escape (Ctrl-a q detaches): every Ctrl-a
 * typed is sent doubled, which lxc-console passes on as one. What it prints
 * is the console's output, which viewers get from the log instead: it is
 * read and dropped so the monitor never blocks on a full pipe.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

const CTRL_A = 0x01;

export interface ConsoleInputTarget {
  /** LXC's container name and its lxcpath. */
  name: string;
  lxcPath: string;
}

export class LxcConsoleInput {
  private readonly child: ChildProcessWithoutNullStreams;
  private complaint = '';
  /** Resolves once the child has ended, with why. */
  readonly ended: Promise<string>;

  constructor(lxcConsole: string, target: ConsoleInputTarget) {
    this.child = spawn(lxcConsole, ['-n', target.name, '-P', target.lxcPath, '-t', '0'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', () => undefined);
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => (this.complaint = (this.complaint + text).slice(-1000)));
    this.child.stdin.on('error', () => undefined);
    this.ended = new Promise((resolve) => {
      this.child.once('error', (error) => resolve(`${lxcConsole} could not run: ${error.message}`));
      this.child.once('close', (code, signal) => resolve(`lxc-console ended ${code === null ? `by ${signal}` : `with ${code}`}${this.complaint ? `: ${lastLine(this.complaint)}` : ''}`));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  write(bytes: Buffer): void {
    if (this.running) this.child.stdin.write(escapeCtrlA(bytes));
  }

  close(): void {
    this.child.stdin.end();
    if (this.running) this.child.kill('SIGTERM');
  }
}

/** Each Ctrl-a doubled, as lxc-console takes a literal one. */
export function escapeCtrlA(bytes: Buffer): Buffer {
  if (!bytes.includes(CTRL_A)) return bytes;
  const out: number[] = [];
  for (const byte of bytes) {
    out.push(byte);
    if (byte === CTRL_A) out.push(CTRL_A);
  }
  return Buffer.from(out);
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)!.replace(/^lxc-console: [^:]+: /, '');
}
