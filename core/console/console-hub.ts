/**
 * One guest's console as the kernel holds it while anyone watches: the
 * backend's single stream, fanned out to every viewer. Output goes to each
 * viewer as it comes; a viewer whose unsent bytes pass the bound is cut
 * off, so it never holds back the guest or the other viewers. Every
 * viewer may type; its bytes go to the guest in the order they arrive.
 * Chunks that arrive in the same turn of the event loop go out as one frame
 * (setImmediate): a burst costs one send per viewer, not one per chunk, and
 * an echo is not held back.
 */
import type { GuestConsole } from '../contract/plugin-api.js';

/** Gathered bytes that go out at once, without waiting for the turn to end. */
const BATCH_BYTES = 64 * 1024;

/** A viewer as the hub sees it, whatever carries it (a WebSocket). */
export interface ConsoleViewer {
  readonly id: string;
  /** Bytes handed to the viewer's transport and not yet sent. */
  buffered(): number;
  send(bytes: Buffer): void;
  /** Close the viewer's transport: cut off as too slow, or the console ended. */
  end(why: 'slow' | 'ended', reason: string): void;
}

export interface HubEvents {
  /** The guest (re)booted (its backend said so). */
  reset(reason: string): void;
  /** A viewer left, on its own or cut off; `reason` says which. */
  detached(viewer: ConsoleViewer, reason: string, remaining: number): void;
  /** No viewer and no attach pending: the hub has closed the backend's console. */
  closed(): void;
}

export class ConsoleHub {
  private readonly viewers = new Set<ConsoleViewer>();
  /** Attaches between the open and the viewer's arrival: the hub stays open for them. */
  private pending = 0;
  private closed = false;
  /** Output gathered while it streams, sent by the flush timer. */
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private flushing?: NodeJS.Immediate;

  constructor(
    readonly guestId: string,
    private readonly console: GuestConsole,
    private readonly maxBufferedBytes: number,
    private readonly events: HubEvents,
  ) {
    console.output.on('data', (chunk: Buffer) => this.gather(chunk));
    console.output.once('end', () => this.end('the guest\'s console ended (the guest was deleted or its backend stopped)'));
    console.output.once('error', (error: Error) => this.end(`the guest's console failed: ${error.message}`));
    console.onReset?.((reason) => this.events.reset(reason));
  }

  get size(): number {
    return this.viewers.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Keeps the hub open for a viewer about to attach (its WebSocket handshake). */
  hold(): void {
    this.pending += 1;
  }

  /** The held viewer never came (its handshake failed). */
  unhold(): void {
    this.pending -= 1;
    this.closeIfIdle();
  }

  /** The held viewer arrives: from now on it gets every output byte. */
  add(viewer: ConsoleViewer): void {
    this.pending -= 1;
    this.viewers.add(viewer);
  }

  /** Bytes a viewer typed. */
  write(bytes: Buffer): void {
    if (!this.closed) this.console.write(bytes);
  }

  /** The viewer left (its WebSocket closed). */
  remove(viewer: ConsoleViewer, reason: string): void {
    if (!this.viewers.delete(viewer)) return;
    this.events.detached(viewer, reason, this.viewers.size);
    this.closeIfIdle();
  }

  /** Ends every viewer and the backend's console (the agent stops, the console ended). */
  end(reason: string): void {
    this.flush();
    for (const viewer of [...this.viewers]) {
      this.viewers.delete(viewer);
      viewer.end('ended', reason);
      this.events.detached(viewer, reason, this.viewers.size);
    }
    this.pending = 0;
    this.closeIfIdle();
  }

  /** Chunks of one turn of the event loop go out together. */
  private gather(chunk: Buffer): void {
    this.gathered.push(chunk);
    this.gatheredBytes += chunk.length;
    if (this.gatheredBytes >= BATCH_BYTES) this.flush();
    else this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.gatheredBytes === 0) return;
    const chunk = this.gathered.length === 1 ? this.gathered[0] : Buffer.concat(this.gathered, this.gatheredBytes);
    this.gathered = [];
    this.gatheredBytes = 0;
    this.fanOut(chunk);
  }

  private fanOut(chunk: Buffer): void {
    for (const viewer of this.viewers) {
      // Checked before the send: a chunk larger than the bound still reaches a viewer that keeps up.
      if (viewer.buffered() > this.maxBufferedBytes) {
        // Cut off rather than wait: the guest and the other viewers go on.
        this.viewers.delete(viewer);
        const reason = `viewer too slow: over ${this.maxBufferedBytes} bytes of console output unsent`;
        viewer.end('slow', reason);
        this.events.detached(viewer, reason, this.viewers.size);
        continue;
      }
      viewer.send(chunk);
    }
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (this.closed || this.viewers.size > 0 || this.pending > 0) return;
    this.closed = true;
    clearImmediate(this.flushing);
    this.gathered = [];
    this.console.close();
    this.events.closed();
  }
}
