/**
 * A WebSocket joined to a byte stream (a guest's VNC connection): binary
 * frames carry the raw bytes both ways, as websockify does, which is what
 * noVNC speaks. Each side is paused while the other cannot take more, so a
 * slow viewer slows only its own connection, and neither buffers without
 * bound. Whichever side ends, the other is closed.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

export interface PipeLimits {
  /** Bytes queued toward the viewer at which reading the stream pauses. */
  highWaterBytes: number;
  /** ... and below which it resumes. */
  lowWaterBytes: number;
}

/** Up to 4 MiB in flight toward a viewer: a few full screens of raw RFB updates at 1024x768. */
export const DEFAULT_PIPE_LIMITS: PipeLimits = { highWaterBytes: 4 * 1024 * 1024, lowWaterBytes: 1024 * 1024 };

/** WebSocket close reasons are at most 123 bytes. */
const reason = (text: string) => text.slice(0, 120);

export function pipeWebSocket(ws: WebSocket, stream: Duplex, what: string, limits: PipeLimits = DEFAULT_PIPE_LIMITS): void {
  const resumeWhenDrained = () => {
    if (stream.isPaused() && ws.bufferedAmount < limits.lowWaterBytes) stream.resume();
  };
  stream.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(chunk, { binary: true }, resumeWhenDrained);
    if (ws.bufferedAmount >= limits.highWaterBytes) stream.pause();
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.close(1003, 'binary frames only: they carry the raw bytes');
      return;
    }
    if (!stream.write(data)) {
      ws.pause();
      stream.once('drain', () => ws.resume());
    }
  });
  const closeViewer = (code: number, text: string) => {
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason(text));
  };
  stream.once('end', () => closeViewer(1000, `${what} closed the connection`));
  stream.once('close', () => closeViewer(1000, `${what} closed the connection`));
  stream.once('error', (error: NodeJS.ErrnoException) => closeViewer(1011, `${what} failed: ${error.code ?? 'connection error'}`));
  ws.once('close', () => stream.destroy());
  // The stream may have ended between connecting and now.
  if (stream.destroyed) closeViewer(1011, `${what} closed the connection`);
  // ws closes the connection after an error (a frame over maxPayload, a protocol violation).
  ws.on('error', () => stream.destroy());
}
