/**
 * Gives every request an id (the client's X-Request-ID when sane, else a
 * new one), echoes it, and logs one JSON line per request when it ends.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { AgentLogger } from '../logger.js';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestContext(log: AgentLogger, accessLog: boolean) {
  return async function tagRequest(ctx: Context, next: Next): Promise<void> {
    const offered = ctx.get('x-request-id');
    const reqId = SANE_ID.test(offered) ? offered : randomUUID();
    ctx.state.reqId = reqId;
    ctx.set('X-Request-ID', reqId);
    const started = performance.now();
    try {
      await next();
    } finally {
      if (accessLog) {
        log.info({ reqId, method: ctx.method, url: ctx.url, status: ctx.status, ms: Math.round((performance.now() - started) * 100) / 100 }, 'request');
      }
    }
  };
}
