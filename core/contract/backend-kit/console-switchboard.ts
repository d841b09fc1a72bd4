/**
 * What a backend's console stage needs besides its hypervisor: the consoles
 * the kernel opened, per guest, fed from whatever carries the guest's
 * serial port at the moment (a QEMU chardev socket, a simulated shell). The
 * connection to the hypervisor comes and goes with the guest's power state;
 * a console the kernel holds spans them all, so a viewer who attached while
 * the guest was off sees its next boot from the first byte.
 */
import { Readable } from 'node:stream';
import type { ConsolePurpose, GuestConsole } from '../console.js';

type Input = (bytes: Buffer) => void;

class OpenConsole implements GuestConsole {
  readonly output = new Readable({ read() {} });
  private readonly resetListeners: ((reason: string) => void)[] = [];
  private closed = false;

  constructor(
    private readonly input: () => Input | undefined,
    readonly readLog: (bytes: number) => Promise<Buffer>,
    private readonly release: (console: OpenConsole) => void,
  ) {}

  write(bytes: Buffer): void {
    if (!this.closed) this.input()?.(bytes);
  }

  onReset(listener: (reason: string) => void): void {
    this.resetListeners.push(listener);
  }

  /** Output from the guest. The kernel reads in flowing mode, so nothing piles up here. */
  deliver(bytes: Buffer): void {
    if (!this.closed) this.output.push(bytes);
  }

  reset(reason: string): void {
    if (!this.closed) for (const listener of this.resetListeners) listener(reason);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.output.push(null);
    this.release(this);
  }
}

export class ConsoleSwitchboard {
  private readonly consoles = new Map<string, Set<OpenConsole>>();
  private readonly inputs = new Map<string, Input>();

  /**
   * A GuestConsole for the kernel (the console stage's answer). `readLog`
   * reads this guest's kept output; `log` consoles get no output at all.
   */
  open(guestId: string, purpose: ConsolePurpose, readLog: (bytes: number) => Promise<Buffer>): GuestConsole {
    const console = new OpenConsole(() => this.inputs.get(guestId), readLog, (c) => this.release(guestId, c));
    if (purpose === 'log') {
      console.output.push(null);
      return console;
    }
    let set = this.consoles.get(guestId);
    if (!set) this.consoles.set(guestId, (set = new Set()));
    set.add(console);
    return console;
  }

  /** Whether the kernel holds a console of this guest open for viewers. */
  isOpen(guestId: string): boolean {
    return this.consoles.has(guestId);
  }

  /** Bytes the guest printed, to every console open on it. */
  output(guestId: string, bytes: Buffer): void {
    const set = this.consoles.get(guestId);
    if (set) for (const console of set) console.deliver(bytes);
  }

  /** Where bytes typed into this guest's console go from now on; undefined: nowhere (the guest is off). */
  connectInput(guestId: string, input: Input | undefined): void {
    if (input) this.inputs.set(guestId, input);
    else this.inputs.delete(guestId);
  }

  /** The guest (re)booted: every open console's reset listeners hear why. */
  reset(guestId: string, reason: string): void {
    const set = this.consoles.get(guestId);
    if (set) for (const console of set) console.reset(reason);
  }

  /** Ends every console the kernel holds (the plugin stops, or the guest is deleted when `guestId` is given). */
  closeAll(guestId?: string): void {
    const sets = guestId === undefined ? [...this.consoles.values()] : [this.consoles.get(guestId) ?? new Set<OpenConsole>()];
    for (const set of sets) for (const console of [...set]) console.close();
    if (guestId === undefined) this.inputs.clear();
    else this.inputs.delete(guestId);
  }

  private release(guestId: string, console: OpenConsole): void {
    const set = this.consoles.get(guestId);
    if (!set?.delete(console)) return;
    if (set.size === 0) this.consoles.delete(guestId);
  }
}
