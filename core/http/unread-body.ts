/**
 * Request bodies that are refused before they are read to the end (an
 * upload over the size limit or the free space, a checksum or format
 * refusal mid-body) still get their answer: it is the connection that
 * carries it, so the connection is never reset under it.
 *
 * - A stage reads an upload through `guardedBody`, a stream of its own that
 *   it may destroy (stream.pipeline does on any error): that only unpipes
 *   the request, where destroying the request itself would destroy the
 *   socket before the answer is written.
 * - On a refusal, `settleUnreadBody` reads what is left of the body and
 *   drops it when that is little (the connection then stays usable for the
 *   client's next request); otherwise the answer says `Connection: close`,
 *   and the socket is closed the way HTTP servers must close one the client
 *   is still writing to: FIN after the answer, then the client's bytes read
 *   and dropped until it closes (or a bound passes). Closing with unread
 *   bytes in the kernel's receive buffer would send a TCP reset, which can
 *   make the client's TCP stack discard the answer it had not read yet.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type Readable } from 'node:stream';
import type { Context } from 'koa';

/** At most this much of a refused body is read to keep its connection (a few ms on loopback, ~0.3 s at 100 Mbit/s). */
const DRAIN_BYTES = 4 * 1024 * 1024;
const DRAIN_MS = 2000;
/** How long a closing connection keeps reading the client's bytes after the answer. */
const LINGER_MS = 5000;

/** Bytes of each guarded request a stage has taken. */
const taken = new WeakMap<IncomingMessage, { bytes: number }>();

/** The request's body as a stream a stage may read, pause or destroy without touching the connection. */
export function guardedBody(req: IncomingMessage): Readable {
  const count = { bytes: 0 };
  taken.set(req, count);
  // Counted as they pass, not by a 'data' listener on the request: one would
  // set the request flowing again, to nowhere, once the stage's stream is gone.
  const body = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _encoding, done) {
      count.bytes += chunk.length;
      done(null, chunk);
    },
  });
  // A client that goes away mid-body ends the stage's read with an error, not a hang.
  req.once('close', () => {
    if (!req.complete) body.destroy(Object.assign(new Error('the client closed the connection'), { code: 'ECONNRESET' }));
  });
  return req.pipe(body);
}

/**
 * Called for an error answer while the request body is not fully read:
 * drains a small rest (the connection stays open), else marks the answer
 * `Connection: close` and makes the socket close gracefully after it.
 */
export async function settleUnreadBody(ctx: Context): Promise<void> {
  const req = ctx.req;
  if (req.complete || req.destroyed || req.socket.destroyed) return;
  req.unpipe();
  const declared = Number(req.headers['content-length']);
  const left = Number.isSafeInteger(declared) ? declared - (taken.get(req)?.bytes ?? 0) : undefined;
  if (left === undefined || left <= DRAIN_BYTES) {
    if (await drained(req)) return;
  }
  ctx.set('Connection', 'close');
  lingerOnClose(req);
}

/** Reads and drops the rest of the body; true when it ended within the bounds. */
function drained(req: IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => {
    let bytes = 0;
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      if (!ok) req.pause();
      resolve(ok);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > DRAIN_BYTES) finish(false);
    };
    const onEnd = () => finish(true);
    const onClose = () => finish(req.complete);
    const timer = setTimeout(() => finish(false), DRAIN_MS);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    req.resume();
  });
}

/**
 * Node's HTTP server ends a `Connection: close` exchange with
 * socket.destroySoon() (end, then destroy once written), which resets a
 * socket that still has the client's bytes to read. This socket instead
 * half-closes and drops what still arrives until the client closes its side
 * or LINGER_MS pass.
 */
function lingerOnClose(req: IncomingMessage): void {
  const socket: Socket = req.socket;
  socket.destroySoon = function lingerThenClose(this: Socket) {
    const timer = setTimeout(() => this.destroy(), LINGER_MS).unref();
    this.once('close', () => clearTimeout(timer));
    this.once('end', () => this.destroy());
    this.end();
    // The parser still feeds the unread body to the request: keep both flowing, to nowhere.
    req.resume();
    this.resume();
  };
}
