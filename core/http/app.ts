/**
 * core/http: the Koa app: edge (ids, auth, errors, access log), routes,
 * OpenAPI documents. Routes map requests to actions and never name a plugin.
 * May import: contract, events, guests, jobs, metrics, errors, logger.
 *
 * The Koa application: the edge (request id, auth, errors, access log),
 * JSON bodies, then the routes. 404 and 405 come out as JSON like every error.
 */
import type Router from '@koa/router';
import { IndexedRouter } from './indexed-router.js';
import Koa from 'koa';
import { Errors } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import { bearerAuth } from './auth.js';
import { edge } from './edge.js';
import { eventRoutes, type EventRouteDeps } from './event-routes.js';
import { metricsRoutes, type MetricsRouteDeps } from './metrics-routes.js';
import { guestRoutes, type GuestRouteDeps } from './guest-routes.js';
import { hostRoutes, type HostRouteDeps } from './host-routes.js';
import { imageRoutes, type ImageRouteDeps } from './image-routes.js';
import { jsonBody } from './json-body.js';
import { snapshotRoutes, type SnapshotRouteDeps } from './snapshot-routes.js';
import { vncRoutes, type VncRouteDeps } from './vnc-routes.js';
import { ROUTE_DOCS } from './openapi/route-docs.js';
import { referenceRoutes, VIEWER_ASSET_PATHS } from './openapi/reference-routes.js';

export interface AppOptions {
  log: AgentLogger;
  tokens: string[];
  bodyLimit: string;
  accessLog: boolean;
  guests: GuestRouteDeps;
  host: HostRouteDeps;
  events: EventRouteDeps;
  images: ImageRouteDeps;
  snapshots: SnapshotRouteDeps;
  metrics: MetricsRouteDeps;
  vnc: VncRouteDeps;
}

/** Every route of the API; each has a RouteDoc in openapi/route-docs.ts (a test checks). */
export function createRouter(options: Pick<AppOptions, 'guests' | 'host' | 'events' | 'images' | 'snapshots' | 'metrics' | 'vnc'>): Router {
  const router = new IndexedRouter();
  guestRoutes(router, options.guests);
  hostRoutes(router, options.host);
  imageRoutes(router, options.images);
  snapshotRoutes(router, options.snapshots);
  vncRoutes(router, options.vnc);
  eventRoutes(router, options.events);
  metricsRoutes(router, options.metrics);
  referenceRoutes(router, options.host.version);
  return router;
}

/** Paths reachable without a token: the routes documented as open. */
const OPEN_PATHS = new Set([...ROUTE_DOCS.filter((r) => r.open && !r.path.includes(':')).map((r) => r.path), ...VIEWER_ASSET_PATHS]);

export function createApp(options: AppOptions): Koa {
  const app = new Koa();
  // Errors are answered by the edge; Koa's default handler would print stacks.
  app.silent = true;
  const router = createRouter(options);

  // Outside the edge, so it sees the status the edge answered with (errors included).
  app.use(options.metrics.metrics.http());
  app.use(edge({ log: options.log, accessLog: options.accessLog, authenticate: bearerAuth(options.tokens, OPEN_PATHS) }));
  app.use(jsonBody(options.bodyLimit));
  app.use(router.routes());
  // Reached only when no route answered: 405 with Allow if the path exists
  // under other methods, else 404.
  app.use((ctx) => {
    const matched = router.match(ctx.path, ctx.method);
    const allowed = [...new Set(matched.path.flatMap((layer) => layer.methods))].filter((m) => m !== 'HEAD' || matched.path.length > 0);
    if (matched.path.length > 0 && !matched.route) {
      throw Errors.methodNotAllowed(`${ctx.method} is not allowed on ${ctx.path}; allowed: ${allowed.join(', ')}`, { details: { allow: allowed.join(', ') } });
    }
    throw Errors.routeNotFound(`no route for ${ctx.method} ${ctx.path}; see GET /openapi.json or GET /docs`);
  });
  return app;
}
