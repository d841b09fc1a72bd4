/**
 * The access log: one line per request, `{reqId, method, url, status, ms}`
 * with msg "request", in exactly the format `log.info(fields, 'request')`
 * gives (level label, time, the logger's bindings, the fields, msg).
 *
 * The line goes to the logger's own destination (pino.symbols.streamSym:
 * the same asynchronous, bounded sonic-boom as every other line, so
 * batching and dropping under a stalled reader apply unchanged), but is
 * not made by pino's generic serializer: that serializer (walking the
 * object, the level formatter's object, the string escaping checks) was
 * most of what an access line cost, about a quarter of the agent's CPU
 * time per GET /guests/{id}.
 *
 * On the agent's own destination (core/logger.ts, which offers its batch
 * as LOG_BATCH) the line is encoded byte by byte straight into the batch:
 * the parts that stay the same (the head up to the request id, for the
 * millisecond of the time; "method" with its method; "status" with its
 * status) are kept as bytes, and the request id, URL and duration are
 * copied in. Building the line as a string (a rope of a dozen parts, two
 * JSON.stringify calls) only for the batch to flatten and encode it again
 * cost ~3 µs of CPU per request in the agent under load. A URL or method
 * that JSON must escape, or another destination (tests log to memory),
 * takes the string path: the same bytes.
 */
import { pino } from 'pino';
import { LOG_BATCH, type LogBatch } from '../log-batch.js';
import type { AgentLogger } from '../logger.js';

export type AccessLine = (reqId: string, method: string, url: string, status: number, ms: number) => void;

interface PinoInternals {
  write(line: string): void;
}

/**
 * `reqId` must need no JSON escaping and be ASCII (the edge only passes ids
 * matching its SANE_ID pattern, or a UUID); method and url are escaped here.
 */
export function accessLine(log: AgentLogger): AccessLine {
  const internals = log as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as (PinoInternals & Record<symbol, unknown>) | undefined;
  const bindings = internals[pino.symbols.chindingsSym];
  const time = internals[pino.symbols.timeSym];
  if (!stream || typeof stream.write !== 'function' || typeof bindings !== 'string' || typeof time !== 'function') {
    // A pino release without these internals: the same line, the generic way.
    return (reqId, method, url, status, ms) => log.info({ reqId, method, url, status, ms }, 'request');
  }
  const now = time as () => string;
  const asText = (reqId: string, method: string, url: string, status: number, ms: number, at: string) =>
    `{"level":"info"${at}${bindings},"reqId":"${reqId}","method":${JSON.stringify(method)},"url":${JSON.stringify(url)},"status":${status},"ms":${ms},"msg":"request"}\n`;
  const batch = stream[LOG_BATCH] as LogBatch | undefined;
  if (!batch) {
    return (reqId, method, url, status, ms) => {
      if (log.isLevelEnabled('info')) stream.write(asText(reqId, method, url, status, ms, now()));
    };
  }
  const encoder = new LineEncoder(bindings);
  return (reqId, method, url, status, ms) => {
    if (!log.isLevelEnabled('info')) return;
    const at = now();
    if (!encoder.encode(batch, at, reqId, method, url, status, ms)) stream.write(asText(reqId, method, url, status, ms, at));
  };
}

/** Distinct methods and statuses whose bytes are kept (llhttp knows ~35 methods; statuses are 100–599). */
const MAX_KEPT = 1024;

/** The access line as bytes, into a LogBatch. */
class LineEncoder {
  private time = '';
  /** `{"level":"info","time":"…","name":"hyperkern",…,"reqId":"` for `time`. */
  private head: Uint8Array = new Uint8Array(0);
  /** `","method":"GET","url":"` per method. */
  private readonly methods = new Map<string, Uint8Array>();
  /** `","status":200,"ms":` per status. */
  private readonly statuses = new Map<number, Uint8Array>();
  private static readonly TAIL = utf8(',"msg":"request"}\n');

  constructor(private readonly bindings: string) {}

  /** False (nothing written) when a part needs JSON escaping or is not ASCII, or the line fits no batch. */
  encode(batch: LogBatch, time: string, reqId: string, method: string, url: string, status: number, ms: number): boolean {
    if (time !== this.time) {
      this.time = time;
      this.head = utf8(`{"level":"info"${time}${this.bindings},"reqId":"`);
    }
    const head = this.head;
    const methodPart = this.methods.get(method) ?? this.keep(this.methods, method, `","method":${JSON.stringify(method)},"url":"`);
    const statusPart = this.statuses.get(status) ?? this.keep(this.statuses, status, `","status":${status},"ms":`);
    const msText = String(ms);
    const tail = LineEncoder.TAIL;
    const length = head.length + reqId.length + methodPart.length + url.length + statusPart.length + msText.length + tail.length;
    if (!batch.room(length)) return false;
    const bytes = batch.bytes;
    let at = batch.used;
    bytes.set(head, at);
    at += head.length;
    at = copyAscii(bytes, at, reqId);
    bytes.set(methodPart, at);
    at += methodPart.length;
    at = copySafe(bytes, at, url);
    if (at < 0) return false;
    bytes.set(statusPart, at);
    at += statusPart.length;
    at = copyAscii(bytes, at, msText);
    bytes.set(tail, at);
    batch.used = at + tail.length;
    batch.lineEnded();
    return true;
  }

  private keep<K>(kept: Map<K, Uint8Array>, key: K, text: string): Uint8Array {
    const bytes = utf8(text);
    if (kept.size < MAX_KEPT) kept.set(key, bytes);
    return bytes;
  }
}

/** The UTF-8 bytes of `text`, as the string path would write them. */
function utf8(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}

/** Copies `text` (ASCII by contract) at `at`; answers where it ends. */
function copyAscii(bytes: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) bytes[at++] = text.charCodeAt(i);
  return at;
}

/**
 * Copies `text` at `at` if JSON needs no escape in it and it is ASCII
 * (printable, no `"` or `\`); answers where it ends, or -1.
 */
function copySafe(bytes: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    bytes[at++] = c;
  }
  return at;
}
