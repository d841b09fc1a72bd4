/**
 * msgpack-lite's encode and decode streams, fitted for a request/response
 * channel. Two things differ from the library's defaults, both on purpose:
 *
 * - The encode stream keeps encoded bytes in a 64 KiB buffer until it fills
 *   (it only flushes on end), which would hold a small request back forever;
 *   here every message is flushed as soon as it is written.
 * - The decode stream throws from inside `write()` on bytes that are not
 *   MessagePack (e.g. 0xc1), which would surface as an uncaught exception
 *   in whatever wrote them; here it becomes the stream's 'error' event.
 *   A top-level nil would be pushed as `null`, which a Node stream takes
 *   for its end; no RPC message is nil, so it is an error too.
 */
import msgpack from 'msgpack-lite';
import type { Transform, TransformCallback } from 'node:stream';

type FlexStream = Transform & { encoder?: { write(v: unknown): void; flush(): void }; decoder?: { write(c: Buffer): void; flush(): void } };

/** Objects in, one flushed MessagePack value per object out. */
export function createMessageEncoder(): Transform {
  const stream = msgpack.createEncodeStream() as unknown as FlexStream;
  stream._transform = function (chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback) {
    try {
      stream.encoder!.write(chunk);
      stream.encoder!.flush();
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  };
  return stream;
}

/**
 * Bytes held while waiting for the rest of one message. A peer announcing a
 * huge string and never sending it would otherwise grow this without end.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Bytes in, decoded MessagePack values out; undecodable bytes end in 'error'. */
export function createMessageDecoder(): Transform {
  const stream = msgpack.createDecodeStream() as unknown as FlexStream;
  (stream.decoder as unknown as { push(v: unknown): void }).push = (value: unknown) => {
    if (value === null || value === undefined) throw new Error('a top-level nil, which is no MessagePack-RPC message');
    stream.push(value);
  };
  stream._transform = function (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    try {
      stream.decoder!.write(chunk);
      stream.decoder!.flush();
      const held = stream.decoder as unknown as { buffer?: Buffer; offset: number };
      if (held.buffer && held.buffer.length - held.offset > MAX_MESSAGE_BYTES) {
        throw new Error(`a message larger than ${MAX_MESSAGE_BYTES / 1024 / 1024} MiB`);
      }
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  };
  return stream;
}
