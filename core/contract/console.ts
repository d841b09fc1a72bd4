/**
 * The console stage kind's shapes: how a backend hands the kernel a guest's
 * serial console. The backend gives one byte stream per guest and keeps the
 * console's output log; the kernel owns everything about viewers (several
 * at once, a bounded buffer each, a slow one cut off, events, auth), so a
 * backend never sees a WebSocket. See docs/console.md.
 */
import type { Readable } from 'node:stream';
import type { Guest } from './wire-types.js';

/**
 * Why the kernel opens a guest's console: `view`, a viewer attached and
 * reads `output` until the kernel closes it; `log`, only `readLog` is called,
 * then `close` (the backend may answer `output` as an empty stream).
 */
export type ConsolePurpose = 'view' | 'log';

/** What a console stage receives. */
export interface ConsoleRequest {
  /** The guest, as the registry holds it now (in any state: off too). */
  guest: Guest;
  purpose: ConsolePurpose;
  /** The stage's config args (none today). */
  args: Record<string, unknown>;
}

/**
 * A guest's console as its backend opened it for the kernel. At most one is
 * open per guest for viewers (the kernel fans it out), plus short-lived
 * ones for log reads.
 */
export interface GuestConsole {
  /**
   * The guest's output bytes from the moment the stage answered until
   * `close()`, across the guest's reboots and power cycles: a guest that is
   * off prints nothing until its next boot, whose output comes from its very
   * first byte. The kernel reads it as fast as it comes, so it never holds
   * the guest back; it ends only at `close()` or when the backend stops.
   */
  readonly output: Readable;
  /**
   * Bytes typed into the guest's console, in order. While the guest has no
   * console to type into (it is off), they are dropped.
   */
  write(bytes: Buffer): void;
  /**
   * Up to the last `bytes` bytes of the console's output log, oldest first:
   * kept while nobody is attached, across guest reboots and agent restarts,
   * rotated by size by the backend.
   */
  readLog(bytes: number): Promise<Buffer>;
  /**
   * The backend calls `listener` when the guest (re)boots: its start, a
   * reset (QEMU's RESET event). Optional: a backend that cannot tell has none.
   */
  onReset?(listener: (reason: string) => void): void;
  /** Lets go of it: `output` ends, `write` drops. Idempotent. */
  close(): void;
}
