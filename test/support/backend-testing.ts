/**
 * Test support shared by the hypervisor backends' tests (QEMU, libvirt): a
 * guest directory standing in for the kernel's registry when a plugin is
 * driven directly, guests shaped the way the kernel shapes them, a logger
 * that keeps lines, a client for the tiny guest's serial shell, and the
 * StageRejection a stage call is refused with.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { StageRejection, tapName, type Guest, type GuestDirectory, type Logger, type StageContext } from '../../core/contract/index.js';
import { underLoad } from './load-budget.js';

/** The kernel's registry as a plugin sees it, in memory, recording what the plugin observed. */
export class RecordingGuests implements GuestDirectory {
  readonly guests = new Map<string, Guest>();
  readonly observed: { id: string; change: Partial<Guest>; reason: string }[] = [];

  put(guest: Guest): void {
    this.guests.set(guest.id, structuredClone(guest));
  }
  async list(): Promise<Guest[]> {
    return [...this.guests.values()].map((g) => structuredClone(g));
  }
  async get(id: string): Promise<Guest | undefined> {
    const guest = this.guests.get(id);
    return guest && structuredClone(guest);
  }
  async observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): Promise<void> {
    this.observed.push({ id, change, reason });
    const guest = this.guests.get(id);
    if (!guest) return;
    const { metadata, ...rest } = change;
    Object.assign(guest, rest);
    if (metadata) guest.metadata = { ...guest.metadata, ...metadata };
  }
  async waitForState(id: string, state: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.guests.get(id)?.state !== state) {
      if (Date.now() > deadline) {
        throw new Error(`guest ${id} did not reach state "${state}" within ${timeoutMs} ms (state "${this.guests.get(id)?.state}")`);
      }
      await sleep(50);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A logger that keeps lines for assertions and prints them when HK_TEST_LOG is set. */
export class MemoryLogger implements Logger {
  constructor(
    readonly lines: { level: string; obj: object | string; msg?: string }[] = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}
  private write(level: string, obj: object | string, msg?: string) {
    const entry = { level, obj: typeof obj === 'string' ? obj : { ...this.bindings, ...obj }, msg };
    this.lines.push(entry);
    if (process.env.HK_TEST_LOG) console.log(JSON.stringify(entry));
  }
  debug(obj: object | string, msg?: string) { this.write('debug', obj, msg); }
  info(obj: object | string, msg?: string) { this.write('info', obj, msg); }
  warn(obj: object | string, msg?: string) { this.write('warn', obj, msg); }
  error(obj: object | string, msg?: string) { this.write('error', obj, msg); }
  child(bindings: Record<string, unknown>): Logger { return new MemoryLogger(this.lines, { ...this.bindings, ...bindings }); }
}

/**
 * What the kernel hands a stage. Its bound is generous, longer than the
 * backends' own waits (a shutdown waits 120 s for the guest), so a stage
 * that gives up says why itself rather than "aborted"; and it grows with
 * the load this run measured (guest boot time).
 */
export function stageContext(stage: string, log: Logger, timeoutMs = 180_000): StageContext {
  const bound = underLoad(timeoutMs);
  return { stage, signal: AbortSignal.timeout(bound), timeoutMs: bound, log };
}

/** A guest as the kernel hands it to create: ids, NIC names, MACs and devices assigned. */
export function kernelShapedGuest(overrides: Partial<Guest> & { nicNetworks?: string[]; diskSizes?: number[] } = {}): Guest {
  const id = randomUUID();
  const { nicNetworks = [], diskSizes = [64], ...rest } = overrides;
  return {
    id,
    type: '',
    image: '',
    state: 'creating',
    memory: 256,
    cpu: 1,
    vnc: 0,
    metadata: {},
    nics: nicNetworks.map((network, i) => ({
      name: `net${i}`,
      network,
      model: '',
      mac: '02:' + [...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0')).join(':'),
      address: '',
      netmask: '',
      gateway: '',
      device: tapName(id, i),
      vlans: [],
    })),
    disks: diskSizes.map((size, i) => ({
      bus: 'virtio' as const,
      device: 'vd' + String.fromCharCode(97 + i),
      size,
      volume: '',
      image: '',
      source: '',
    })),
    ...rest,
  };
}

/**
 * The tiny guest's root shell on its second serial port (serial1.sock).
 * Commands are framed by markers so their output and exit code can be read
 * back; the tty echoes input, which the `$?` in the end marker tells apart.
 */
export class GuestShell {
  private text = '';
  private counter = 0;
  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (this.text += chunk));
    socket.on('error', () => {});
  }
  static async connect(socketPath: string): Promise<GuestShell> {
    const socket = net.connect({ path: socketPath });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const shell = new GuestShell(socket);
    await shell.ready();
    return shell;
  }
  /**
   * Input sent before the guest's shell opens ttyS1 is lost, so probe until
   * an arithmetic expansion comes back (the echoed input cannot match it).
   */
  private async ready(timeoutMs = 30000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.text.includes('__hk_ready_42__')) {
      if (Date.now() > deadline) throw new Error(`the guest shell on ttyS1 did not answer within ${timeoutMs} ms`);
      this.socket.write('echo __hk_ready_$((40+2))__\n');
      await sleep(300);
    }
    await sleep(100);
    this.text = '';
  }
  /** Runs a command; resolves with its output, rejects on non-zero exit or timeout. */
  async run(command: string, timeoutMs = 20000): Promise<string> {
    const n = ++this.counter;
    const begin = `__hk_begin_${n}__`;
    const end = new RegExp(`__hk_end_${n}__:(\\d+)`);
    this.socket.write(`echo ${begin}; ${command}; echo __hk_end_${n}__:$?\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = end.exec(this.text);
      if (match) {
        const output = this.text.slice(this.text.lastIndexOf(begin) + begin.length, match.index).trim();
        this.text = this.text.slice(match.index + match[0].length);
        if (match[1] !== '0') throw new Error(`guest command "${command}" exited ${match[1]}: ${output}`);
        return output;
      }
      if (Date.now() > deadline) throw new Error(`guest command "${command}" did not finish within ${timeoutMs} ms; output: ${this.text.slice(-500)}`);
      await sleep(50);
    }
  }
  /** Sends a command whose completion cannot be seen (it reboots or powers off the guest). */
  send(command: string): void {
    this.socket.write(`${command}\n`);
  }
  /** Ends the connection after pending input reached the guest (destroy would drop it). */
  close(): void {
    this.socket.end();
  }
}

/** Waits until the console log contains `text` after byte `from`; resolves with the time it appeared. */
export async function waitForConsole(file: string, text: string, timeoutMs: number, from = 0): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const content = await readFile(file, 'utf8').catch(() => '');
    if (content.indexOf(text, from) >= 0) return Date.now();
    if (Date.now() > deadline) throw new Error(`"${text}" not on the console ${file} within ${timeoutMs} ms; it holds:\n${content.slice(-2000)}`);
    await sleep(25);
  }
}

/** The StageRejection (a 4xx/5xx a stage answers with) `promise` rejects with; any other outcome fails the test. */
export async function rejection(promise: Promise<unknown>): Promise<StageRejection> {
  try {
    await promise;
  } catch (error) {
    if (StageRejection.is(error)) return error;
    throw error;
  }
  throw new Error('expected a StageRejection');
}
