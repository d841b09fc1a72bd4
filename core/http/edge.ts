/**
 * The HTTP edge, one middleware: every request gets an id (the client's
 * X-Request-ID when sane, else a new one, echoed back), is authenticated,
 * has every error turned into the JSON error answer, and ends counted and
 * timed (the HTTP metrics) with one access-log line. One layer instead of five keeps the per-request cost of
 * what every request does at one async frame.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { AgentLogger } from '../logger.js';
import type { BearerCheck } from './auth.js';
import { accessLine } from './access-log.js';
import { answerError } from './error-handler.js';
import { settleUnreadBody } from './unread-body.js';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface EdgeOptions {
  log: AgentLogger;
  accessLog: boolean;
  authenticate: BearerCheck;
  /** Told every answered request and how long it took (the HTTP metrics). */
  observe: (ctx: Context, seconds: number) => void;
}

export function edge({ log, accessLog, authenticate, observe }: EdgeOptions) {
  const logRequest = accessLine(log);
  return async function handleRequest(ctx: Context, next: Next): Promise<void> {
    const offered = ctx.get('x-request-id');
    const reqId = SANE_ID.test(offered) ? offered : randomUUID();
    ctx.state.reqId = reqId;
    ctx.set('X-Request-ID', reqId);
    const started = performance.now();
    try {
      // Routes open to all (GET /health) show details only to the authenticated.
      ctx.state.authenticated = authenticate(ctx);
      await next();
    } catch (error) {
      answerError(ctx, error, log);
      // A body refused before its end: the answer must still reach the client.
      if (!ctx.req.complete) await settleUnreadBody(ctx);
    }
    const ms = performance.now() - started;
    observe(ctx, ms / 1000);
    // What logging allocates per request: the line itself.
    if (accessLog) logRequest(reqId, ctx.method, ctx.url, ctx.status, Math.round(ms * 100) / 100);
  };
}
