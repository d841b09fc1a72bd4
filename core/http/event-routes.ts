/** GET /events: the change feed as Server-Sent Events (docs/events.md). */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { Errors } from '../errors.js';
import type { ChangeFeed } from '../events/change-feed.js';
import { eventFilter } from '../events/event-filter.js';
import { SseStream, type SseOptions } from '../events/sse-stream.js';

export interface EventRouteDeps {
  feed: ChangeFeed;
  sse: SseOptions;
  /** Open streams, so the kernel can end them when it stops. */
  streams: Set<SseStream>;
}

/** Last-Event-ID (a reconnecting EventSource) wins over ?since=. */
function resumeAfter(ctx: Context): number | undefined {
  const header = ctx.get('last-event-id');
  const raw = header !== '' ? header : ctx.query.since;
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  const id = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(id)) {
    throw Errors.badRequest(`${header !== '' ? 'Last-Event-ID' : 'since'} must be an event id (a whole number >= 0); got "${text}"`);
  }
  return id;
}

export function eventRoutes(router: Router, deps: EventRouteDeps): void {
  router.get('/events', (ctx) => {
    const after = resumeAfter(ctx);
    const filter = eventFilter(ctx.query);
    // The stream outlives this middleware chain: Koa must not answer it.
    ctx.respond = false;
    ctx.status = 200;
    ctx.req.socket.setTimeout(0);
    const stream = new SseStream(ctx.res, filter, deps.sse, (s) => deps.streams.delete(s));
    deps.streams.add(stream);
    stream.start(deps.feed, after);
  });
}
