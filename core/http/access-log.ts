/**
 * The access log: one line per request, `{reqId, method, url, status, ms}`
 * with msg "request", in exactly the format `log.info(fields, 'request')`
 * gives (level label, time, the logger's bindings, the fields, msg).
 *
 * The line is written to the logger's own destination (pino.symbols
 * .streamSym: the same asynchronous, bounded sonic-boom as every other
 * line, so batching and dropping under a stalled reader apply unchanged),
 * but formatted by one template instead of pino's generic serializer:
 * that serializer (walking the object, the level formatter's object, the
 * string escaping checks) was most of what an access line cost, about a
 * quarter of the agent's CPU time per GET /guests/{id}.
 */
import { pino } from 'pino';
import type { AgentLogger } from '../logger.js';

export type AccessLine = (reqId: string, method: string, url: string, status: number, ms: number) => void;

interface PinoInternals {
  write(line: string): void;
}

/**
 * `reqId` must need no JSON escaping (the edge only passes ids matching its
 * SANE_ID pattern, or a UUID); method and url are escaped here.
 */
export function accessLine(log: AgentLogger): AccessLine {
  const internals = log as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as PinoInternals | undefined;
  const bindings = internals[pino.symbols.chindingsSym];
  const time = internals[pino.symbols.timeSym];
  if (!stream || typeof stream.write !== 'function' || typeof bindings !== 'string' || typeof time !== 'function') {
    // A pino release without these internals: the same line, the generic way.
    return (reqId, method, url, status, ms) => log.info({ reqId, method, url, status, ms }, 'request');
  }
  const now = time as () => string;
  return (reqId, method, url, status, ms) => {
    if (!log.isLevelEnabled('info')) return;
    stream.write(`{"level":"info"${now()}${bindings},"reqId":"${reqId}","method":${JSON.stringify(method)},"url":${JSON.stringify(url)},"status":${status},"ms":${ms},"msg":"request"}\n`);
  };
}
