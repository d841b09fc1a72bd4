/**
 * One declaration per route: method, path, handler, request and response
 * schemas, docs and whether it is open. The router mounts the handlers
 * (api-routes.ts), the auth layer reads which paths are open, and the
 * OpenAPI document (openapi/) is generated from the same objects, so a route
 * cannot be served undocumented or documented unserved.
 *
 * A declaration's `handle` is a factory: it is given the route group's
 * dependencies once, when the router is built, and returns the Koa
 * middleware. Declarations themselves need no dependencies, so the
 * document can be generated without a running agent.
 * See docs/openapi.md "Declaring a route".
 */
import type { RouterMiddleware } from '@koa/router';
import type { z } from 'zod';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export type HeaderName = 'X-Request-ID' | 'X-Guest-Job-ID' | 'X-Guest-Job-Status' | 'Allow' | 'WWW-Authenticate' | 'Location';

/** The answer of one status code. */
export interface ResponseDoc {
  description: string;
  /** JSON body; omit for an empty body. */
  schema?: z.ZodType;
  /** Content type other than JSON, e.g. text/html for /docs. */
  contentType?: string;
  /** Names of response headers (api-registry.ts HEADERS) that this answer carries. */
  headers?: HeaderName[];
}

/** A request body. Optional unless `required`: most routes take an absent body as Go's `null`. */
export interface BodyDoc {
  schema: z.ZodType;
  required?: boolean;
  /** Default application/json. */
  contentType?: string;
  description?: string;
}

export interface RequestDoc {
  /** Descriptions of path parameters, by name; every `:name` of the path is documented (a generic text when not given here). */
  params?: Record<string, string>;
  /** Query parameters (a zod object; every value arrives as a string). */
  query?: z.ZodObject;
  body?: BodyDoc;
}

export type RouteHandler = RouterMiddleware;

export interface RouteDeclaration<Deps = never> {
  method: HttpMethod;
  /** The Koa path: `/guests/:id/start`. Plain segments only (literals and whole-segment `:params`). */
  path: string;
  /** Unique; the CLI and the tests name operations by it. */
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  request?: RequestDoc;
  /** Statuses this route answers with on purpose; the shared ones (401, 500, default) are added. */
  responses: Record<number, ResponseDoc>;
  /** Reachable without a bearer token (health, the docs themselves). */
  open?: boolean;
  /** Open, but a valid token (when tokens are configured) gets a fuller answer (health). */
  tokenOptional?: boolean;
  /** A WebSocket endpoint: a GET that answers 101 Switching Protocols (document it in `responses`). */
  websocket?: boolean;
  /** Makes the route's middleware from its group's dependencies (called once, when the router is built). */
  handle: (deps: Deps) => RouteHandler;
}

/** A route with its group's dependencies still to be chosen from the app's (what api-routes.ts holds). */
export type MountableRoute<AppDeps> = Omit<RouteDeclaration, 'handle'> & { handle: (deps: AppDeps) => RouteHandler };

/** Declares a route; the identity, typed, so a declaration is checked where it is written. */
export function defineRoute<Deps>(route: RouteDeclaration<Deps>): RouteDeclaration<Deps> {
  return route;
}

/** A group's declarations, their handlers given the group's part of the app's dependencies. */
export function withDeps<AppDeps, Deps>(routes: readonly RouteDeclaration<Deps>[], select: (deps: AppDeps) => Deps): MountableRoute<AppDeps>[] {
  return routes.map((route) => ({ ...route, handle: (deps: AppDeps) => route.handle(select(deps)) }));
}

/** Koa `/guests/:id` to OpenAPI `/guests/{id}`. */
export function openApiPath(koaPath: string): string {
  return koaPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/**
 * Which request paths skip authentication: those of the routes declared
 * open. Literal paths are looked up as they are; a parameterized open
 * path matches any one segment per parameter. Both are exact (case and a
 * trailing slash count): a path that only the router's lenient matching
 * would take to an open route is authenticated like any other.
 */
export function openPathTest(routes: readonly Pick<RouteDeclaration, 'path' | 'open'>[]): (path: string) => boolean {
  const open = routes.filter((r) => r.open);
  const literal = new Set(open.filter((r) => !r.path.includes(':')).map((r) => r.path));
  const patterns = open
    .filter((r) => r.path.includes(':'))
    .map((r) => new RegExp(`^${r.path.split('/').map((s) => (s.startsWith(':') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`));
  if (patterns.length === 0) return (path) => literal.has(path);
  return (path) => literal.has(path) || patterns.some((p) => p.test(path));
}
