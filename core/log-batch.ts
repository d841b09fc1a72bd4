/**
 * The batch log lines are encoded into: one Buffer outside V8's heap,
 * handed to the log's destination whole once `batchBytes` have gathered
 * (or when the logger flushes). A Buffer per line kept every line waiting
 * for its batch alive in V8's young generation: each scavenge copied them,
 * and promoted them to the old generation.
 *
 * Batches are used again once the destination has written them (its
 * 'write' events count the bytes, in order): a fresh Buffer per batch
 * meant fresh pages from malloc for every 64 KiB of lines, each first
 * touched by a line being encoded; under load that cost ~1 µs of CPU per
 * request on this machine, more than encoding the line.
 *
 * Lines come in as strings (pino's), or are encoded in place by a writer
 * that asks for room first (the access log, core/http/access-log.ts:
 * building the line as a string and encoding it again cost more than the
 * rest of what logging does per request).
 */

/** Where a destination keeps its batch, for writers that encode in place. */
export const LOG_BATCH = Symbol('hyperkern.logBatch');

/** Written batches kept for use again: enough for the one being written and the next. */
const SPARE_BATCHES = 2;

/** What was handed to the destination and not written yet, in order. */
interface Handed {
  /** The whole batch to use again (undefined: a Buffer not ours). */
  batch: Buffer | undefined;
  /** The bytes handed over. */
  sent: Buffer;
  /** Bytes handed over up to and including these. */
  end: number;
}

export class LogBatch {
  /** The current batch; a writer granted room writes at `used` and moves it on. */
  bytes: Buffer;
  used = 0;
  private readonly spare: Buffer[] = [];
  private readonly handed: Handed[] = [];
  private handedBytes = 0;
  private writtenBytes = 0;

  /**
   * `capacity`: the batch plus room for the line that completes it;
   * `handTo`: takes a batch (or one oversized line) and owns it from then on.
   */
  constructor(
    private readonly batchBytes: number,
    private readonly capacity: number,
    private readonly handTo: (bytes: Buffer) => void,
  ) {
    this.bytes = Buffer.allocUnsafeSlow(capacity);
  }

  /** Hands over what gathered so far (the periodic flush, close, a Buffer written past the batch). */
  handOver(): void {
    if (this.used === 0) return;
    const batch = this.bytes;
    const full = batch.subarray(0, this.used);
    this.bytes = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.capacity);
    this.used = 0;
    this.send(full, batch);
  }

  /** Hands over bytes that are not a batch (a Buffer given to the destination, an oversized line), after what gathered. */
  sendOther(bytes: Buffer): void {
    this.handOver();
    this.send(bytes, undefined);
  }

  /** The destination wrote `n` more bytes (its 'write' event): batches now wholly written are kept for use again. */
  written(n: number): void {
    this.writtenBytes += n;
    while (this.handed.length > 0 && this.handed[0].end <= this.writtenBytes) {
      const { batch } = this.handed.shift()!;
      if (batch && this.spare.length < SPARE_BATCHES) this.spare.push(batch);
    }
  }

  /** The destination dropped `bytes` (its 'drop' event, while they were handed over: it never queued them). */
  dropped(bytes: Buffer): void {
    const last = this.handed.at(-1);
    if (last?.sent !== bytes) return;
    this.handed.pop();
    this.handedBytes -= bytes.length;
    if (last.batch && this.spare.length < SPARE_BATCHES) this.spare.push(last.batch);
  }

  private send(bytes: Buffer, batch: Buffer | undefined): void {
    this.handedBytes += bytes.length;
    this.handed.push({ batch, sent: bytes, end: this.handedBytes });
    this.handTo(bytes);
  }

  /** Makes room for `n` more bytes, handing the batch over first when they would not fit; false when no batch holds that many. */
  room(n: number): boolean {
    if (this.used + n <= this.capacity) return true;
    this.handOver();
    return n <= this.capacity;
  }

  /** After each line: a full batch is handed over. */
  lineEnded(): void {
    if (this.used >= this.batchBytes) this.handOver();
  }

  /** One line given as a string. */
  writeString(line: string): void {
    // At most 3 bytes per UTF-16 unit: a line that might not fit starts the next batch.
    if (!this.room(line.length * 3)) {
      this.sendOther(Buffer.from(line));
      return;
    }
    this.used += this.bytes.write(line, this.used);
    this.lineEnded();
  }

  /** What is held and not handed over yet (the exit hook writes it last). */
  pending(): Buffer {
    return this.bytes.subarray(0, this.used);
  }
}
