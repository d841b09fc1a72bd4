/**
 * The API's router: @koa/router, with the routes tested per request
 * narrowed first, through @koa/router's public API only (it used to swap
 * the Router's layer stack and read its layers' options, internals a minor
 * release could move).
 *
 * Router#match tests the regular expression of every route on every
 * request: with the agent's ~50 routes that was about 3 µs per request, the
 * largest single cost of GET /guests/{id} after the socket write. Here every
 * route is registered twice: once in a Router of all routes (listing them,
 * and answering 404 and 405 in app.ts), and once in each small Router of the
 * requests it could match. A request's small Router is chosen by its number
 * of segments and, at each position where some route of that length has a
 * literal segment ("guests", "start"), by its own segment there. It holds,
 * in their original order, every route whose regular expression could
 * match the request (a route of another length, or with another literal at
 * some position, cannot), so it matches exactly what the Router of all
 * routes would. Only plain paths are taken (literal segments and
 * whole-segment `:params`, which is all the API declares), so their shape
 * is known without reading the library's compiled layers.
 */
import Router, { type RouterMiddleware } from '@koa/router';
import type { Middleware } from 'koa';
import type { HttpMethod } from './route.js';

interface Entry {
  method: HttpMethod;
  path: string;
  middleware: RouterMiddleware;
  /** The route's segments, literals in lower case (routes are case-insensitive), `undefined` for a `:param`. */
  segments: (string | undefined)[];
}

/** The routes of one segment count. */
interface CountGroup {
  entries: Entry[];
  /** Positions where some route of the group has a literal segment, and the literals there. */
  literals: Array<[position: number, texts: Set<string>]>;
  /** Dispatch by the request's key (see keyOf): built on a key's first request. */
  byKey: Map<string, Shape>;
}

interface Shape {
  router: Router;
  dispatch: Middleware;
}

/** Stands in a key for a request segment that is no route's literal at that position (a literal never holds ':'). */
const OTHER = ':';

const PLAIN = /^(\/(:[A-Za-z0-9_$]+|[^/:*?+(){}\\]+))+$|^\/$/;

export class IndexedRouter {
  /** Every route, in order: the reference for 404/405 and for listing. */
  private readonly all = new Router();
  private readonly entries: Entry[] = [];
  private groups?: Map<number, CountGroup>;

  /** Adds a route. Only plain paths: `/guests/:id/start`. */
  add(method: HttpMethod, path: string, middleware: RouterMiddleware): void {
    if (!PLAIN.test(path)) throw new Error(`route path ${path}: only literal segments and whole-segment :params are routed`);
    const segments = segmentsOf(path).map((s) => (s.startsWith(':') ? undefined : s.toLowerCase()));
    this.entries.push({ method, path, middleware, segments });
    this.all[method](path, middleware);
    this.groups = undefined;
  }

  /** Every route's layer, in order (Router#stack of the Router of all routes). */
  get stack(): Router['stack'] {
    return this.all.stack;
  }

  /** Router#match over every route: what app.ts answers 404 and 405 from. */
  match(path: string, method: string): ReturnType<Router['match']> {
    return this.all.match(path, method);
  }

  /** Router#match over the routes of the path's shape: what a request is dispatched by. */
  matchIndexed(path: string, method: string): ReturnType<Router['match']> {
    const shape = this.shapeOf(path);
    return shape ? shape.router.match(path, method) : { path: [], pathAndMethod: [], route: false };
  }

  /** The dispatch middleware: the small Router of the request's shape, or on to the next middleware. */
  routes(): Middleware {
    return (ctx, next) => {
      const shape = this.shapeOf(ctx.path);
      return shape ? shape.dispatch(ctx, next) : next();
    };
  }

  /**
   * The small Router of every route that could match `path`: same segment
   * count, and at each position where some route has a literal, a route
   * whose literal there is the path's segment or a `:param`. Keys are made
   * of literals and OTHER only, so there are only as many as the routes'
   * literals combine to, whatever paths clients send.
   */
  private shapeOf(path: string): Shape | undefined {
    const segments = segmentsOf(path);
    const group = this.indexed().get(segments.length);
    if (!group) return undefined;
    let key = '';
    for (const [at, texts] of group.literals) {
      const seen = segments[at].toLowerCase();
      key += `${texts.has(seen) ? seen : OTHER}/`;
    }
    let shape = group.byKey.get(key);
    if (!shape) {
      const parts = key.split('/');
      const router = new Router();
      for (const e of group.entries) {
        if (group.literals.every(([at], i) => e.segments[at] === undefined || e.segments[at] === parts[i])) router[e.method](e.path, e.middleware);
      }
      shape = { router, dispatch: router.routes() as Middleware };
      group.byKey.set(key, shape);
    }
    return shape;
  }

  private indexed(): Map<number, CountGroup> {
    if (this.groups) return this.groups;
    const groups = new Map<number, CountGroup>();
    for (const entry of this.entries) {
      let group = groups.get(entry.segments.length);
      if (!group) groups.set(entry.segments.length, (group = { entries: [], literals: [], byKey: new Map() }));
      group.entries.push(entry);
    }
    for (const [count, group] of groups) {
      for (let at = 0; at < count; at++) {
        const texts = new Set(group.entries.map((e) => e.segments[at]).filter((t): t is string => t !== undefined));
        if (texts.size > 0) group.literals.push([at, texts]);
      }
    }
    this.groups = groups;
    return groups;
  }
}

/** A path's segments; one trailing slash is optional in a (non-strict) route, so it is dropped. */
function segmentsOf(path: string): string[] {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.split('/').slice(1);
}
