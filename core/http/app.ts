/**
 * core/http: the Koa app: edge (ids, auth, errors, access log), routes,
 * OpenAPI documents. Routes map requests to actions and never name a plugin.
 * May import: contract, events, guests, jobs, metrics, console, migration, errors, logger, log-batch.
 *
 * The Koa application: the edge (request id, auth, errors, access log),
 * JSON bodies, then the routes. 404 and 405 come out as JSON like every error.
 */
import Koa from 'koa';
import { Errors } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import { bearerAuth } from './auth.js';
import { edge } from './edge.js';
import { jsonBody } from './json-body.js';
import { API_ROUTES, createRouter, type RouteDeps } from './api-routes.js';
import { ticketCheck } from './ticket-check.js';
import { openPathTest } from './route.js';
import { movedGuestCheck } from './moved-guest-check.js';
import type { MovedGuests } from '../guests/moved-guests.js';

export { createRouter };

export interface AppOptions extends RouteDeps {
  log: AgentLogger;
  tokens: string[];
  bodyLimit: string;
  accessLog: boolean;
  /** Guests that moved to another host: their routes answer 404 with Location. */
  moved: MovedGuests;
}

/** Paths reachable without a token: those of the routes declared open. */
const isOpenPath = openPathTest(API_ROUTES);

export function createApp(options: AppOptions): Koa {
  const app = new Koa();
  // Errors are answered by the edge; Koa's default handler would print stacks.
  app.silent = true;
  const router = createRouter(options);

  app.use(
    edge({
      log: options.log,
      accessLog: options.accessLog,
      authenticate: bearerAuth(options.tokens, isOpenPath, ticketCheck(options.consoles.consoles.tickets)),
      observe: options.metrics.metrics.httpObserver(),
    }),
  );
  // Before the body is read: a moved guest's request is answered as it is.
  app.use(movedGuestCheck(options.moved, options.guests.registry, router));
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
