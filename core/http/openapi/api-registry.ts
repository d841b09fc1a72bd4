/**
 * How a route is documented. Every Koa route has one RouteDoc (a test fails
 * for a route without one, and for a RouteDoc without a route); request
 * schemas are the zod schemas the handlers validate with, response schemas
 * come from wire-schemas.ts. `describeRoute` adds what every operation shares:
 * path parameters from the Koa path, X-Request-ID on every answer, 401 and
 * the bearer scheme unless the route is open, 500 and a default error.
 * See docs/openapi.md "Documenting a new route".
 */
import { OpenAPIRegistry, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ErrorSchema } from './wire-schemas.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** The answer of one status code. */
export interface ResponseDoc {
  description: string;
  /** JSON body; omit for an empty body. */
  schema?: z.ZodType;
  /** Content type other than JSON, e.g. text/html for /docs. */
  contentType?: string;
  /** Names of response headers from HEADERS that this answer carries. */
  headers?: HeaderName[];
}

export interface RouteDoc {
  method: HttpMethod;
  /** The Koa path, as registered with the router: `/guests/:id/start`. */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  /** Query parameters (a zod object; every value arrives as a string). */
  query?: z.ZodObject;
  /** The request body schema (JSON). */
  body?: z.ZodType;
  /** Statuses this route answers with on purpose; shared ones are added. */
  responses: Record<number, ResponseDoc>;
  /** Reachable without a bearer token (health, the docs themselves). */
  open?: boolean;
  /** Open, but a valid token (when tokens are configured) gets a fuller answer (health). */
  tokenOptional?: boolean;
}

export type HeaderName = 'X-Request-ID' | 'X-Guest-Job-ID' | 'X-Guest-Job-Status' | 'Allow' | 'WWW-Authenticate';

/** Response headers the agent sets, documented once. */
export const HEADERS: Record<HeaderName, { description: string; required?: boolean; schema: { type: 'string'; enum?: string[] } }> = {
  'X-Request-ID': { description: "The request's id (the client's X-Request-ID when sane, else a new one); it is in every log line of the request", required: true, schema: { type: 'string' } },
  'X-Guest-Job-ID': { description: 'The id of the job this action queued (GET /jobs/{id})', schema: { type: 'string' } },
  'X-Guest-Job-Status': {
    description: 'With ?wait: the job status when the answer was sent (Complete, Error, or Queued/Running at the deadline)',
    schema: { type: 'string', enum: ['Queued', 'Running', 'Complete', 'Error'] },
  },
  Allow: { description: 'The methods the path answers to', schema: { type: 'string' } },
  'WWW-Authenticate': { description: 'Bearer challenge', schema: { type: 'string' } },
};

export const BEARER = 'bearerAuth';

/** Koa `/guests/:id` to OpenAPI `/guests/{id}`. */
export function openApiPath(koaPath: string): string {
  return koaPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

export function newApiRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', BEARER, {
    type: 'http',
    scheme: 'bearer',
    description: 'A token from auth.tokens or HYPERKERN_TOKENS; needed by every route but /health, /openapi.json and /docs when tokens are configured; /health shows its details only with one',
  });
  for (const [name, header] of Object.entries(HEADERS)) registry.registerComponent('headers', name, header);
  return registry;
}

function response(doc: ResponseDoc, extraHeaders: HeaderName[] = []): ResponseConfig {
  const names = ['X-Request-ID', ...extraHeaders, ...(doc.headers ?? [])];
  const headers = Object.fromEntries([...new Set(names)].map((n) => [n, { $ref: `#/components/headers/${n}` }]));
  const out: ResponseConfig = { description: doc.description, headers: headers as ResponseConfig['headers'] };
  if (doc.schema) out.content = { [doc.contentType ?? 'application/json']: { schema: doc.schema } };
  else if (doc.contentType) out.content = { [doc.contentType]: { schema: { type: 'string' } } };
  return out;
}

function paramDescription(name: string, path: string): string {
  if (name === 'id') return path.startsWith('/jobs') ? 'job id' : path.startsWith('/images') ? 'image id' : 'guest id';
  if (name === 'disk') return "the disk's device name (vda)";
  if (name === 'name') return "the snapshot's name";
  return name;
}

/** Adds one route's operation to the registry. */
export function describeRoute(registry: OpenAPIRegistry, doc: RouteDoc): void {
  const names = [...doc.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
  const params = names.length ? z.object(Object.fromEntries(names.map((n) => [n, z.string().meta({ description: paramDescription(n, doc.path) })]))) : undefined;
  const responses: RouteConfig['responses'] = {};
  for (const [status, r] of Object.entries(doc.responses)) responses[status] = response(r);
  if (!doc.open) {
    responses[401] ??= response({ description: 'Missing or wrong bearer token', schema: ErrorSchema }, ['WWW-Authenticate']);
  }
  responses[500] ??= response({ description: 'A fault in the agent (logged with the request id); nothing changed', schema: ErrorSchema });
  responses.default = response({ description: 'Any other error, e.g. 405 with Allow, or a status a backend stage chose', schema: ErrorSchema }, ['Allow']);
  const request: RouteConfig['request'] = {};
  if (params) request.params = params;
  if (doc.query) request.query = doc.query;
  if (doc.body) request.body = { required: true, content: { 'application/json': { schema: doc.body } } };
  registry.registerPath({
    method: doc.method,
    path: openApiPath(doc.path),
    operationId: doc.operationId,
    tags: [doc.tag],
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    // `{}` is "no token"; with the bearer scheme beside it, a token is optional.
    ...(doc.open ? { security: doc.tokenOptional ? [{}, { [BEARER]: [] }] : [] } : {}),
    request,
    responses,
  });
}
