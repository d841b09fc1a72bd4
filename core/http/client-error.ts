/**
 * Requests Node's HTTP parser refuses before Koa sees them (malformed
 * request line, headers over the size limit) are answered as JSON errors
 * like every other error, not with Node's empty-bodied default.
 */
import type { Socket } from 'node:net';

export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || (error as { code?: string }).code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const body = JSON.stringify({
    message: tooLarge ? 'request headers too large' : `malformed HTTP request (${error.code ?? 'parse error'})`,
    code: status,
    error: `HK_ERR_HTTP_${status}`,
  });
  socket.end(
    `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
