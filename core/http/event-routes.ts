/** GET /events: the change feed as Server-Sent Events (docs/events.md). */
import type { Context } from 'koa';
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { ChangeFeed } from '../events/change-feed.js';
import { eventFilter } from '../events/event-filter.js';
import { EVENT_TYPES } from '../events/kernel-event.js';
import { SseStream, type SseOptions } from '../events/sse-stream.js';
import { defineRoute } from './route.js';
import { err } from './openapi/common-docs.js';

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

const streamEvents = defineRoute({
  method: 'get',
  path: '/events',
  operationId: 'streamEvents',
  tag: 'events',
  summary: 'The change feed as Server-Sent Events (docs/events.md)',
  description:
    'Each event is `id: N`, `event: TYPE`, `data: {"id":N,"time":"RFC 3339","type":"job.failed","guest":"ID","data":{...}}`. ' +
    'Resume with Last-Event-ID or ?since=N (replay, then live); `reset`, `overflow` and `closing` events end or re-base a stream; `: heartbeat` comments keep it alive.',
  request: {
    query: z.object({
      since: z.string().optional().meta({ description: 'Replay every event after this id (0 = the whole retained history), then go live', example: '0' }),
      guest: z.string().optional().meta({ description: 'Only events of these guests (comma-separated ids)' }),
      type: z.string().optional().meta({ description: `Comma-separated event types or families (guest, job, host, plugin, console); the types: ${EVENT_TYPES.join(', ')} (docs/events.md)`, example: 'guest,job.failed' }),
    }),
  },
  responses: {
    200: { description: 'An endless text/event-stream', contentType: 'text/event-stream' },
    400: err('A bad since, Last-Event-ID or type (the message names the valid types)'),
  },
  handle: (deps: EventRouteDeps) => (ctx) => {
    const after = resumeAfter(ctx);
    const filter = eventFilter(ctx.query);
    // The stream outlives this middleware chain: Koa must not answer it.
    ctx.respond = false;
    ctx.status = 200;
    ctx.req.socket.setTimeout(0);
    const stream = new SseStream(ctx.res, filter, deps.sse, (s) => deps.streams.delete(s));
    deps.streams.add(stream);
    stream.start(deps.feed, after);
  },
});

export const EVENT_ROUTES = [streamEvents];
