/**
 * A route declaration (../route.ts) as an OpenAPI operation. Request
 * schemas are the zod schemas the handlers validate with, response schemas
 * come from wire-schemas.ts. `describeRoute` adds what every operation
 * shares: path parameters from the Koa path, X-Request-ID on every answer,
 * 401 and the bearer scheme unless the route is open or the agent has no
 * tokens, 500 and a default error. See docs/openapi.md "Declaring a route".
 */
import { OpenAPIRegistry, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { openApiPath, type HeaderName, type ResponseDoc, type RouteDeclaration } from '../route.js';
import { ErrorSchema } from './wire-schemas.js';

/** How the document describes authentication: as the agent is configured. */
export interface DocumentAuth {
  /** Tokens are configured: every route not declared open needs one. */
  tokens: boolean;
}

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
  Location: { description: 'HK_ERR_GUEST_MOVED: the same path and query on the agent the guest moved to', schema: { type: 'string' } },
};

/** Every route of one guest (/guests/{id}…): once the guest moved away, its 404 names where, with Location. */
const GUEST_ROUTE = /^\/guests\/:id(\/|$)/;
const MOVED_404 = '; or the guest was migrated to another host: HK_ERR_GUEST_MOVED, `movedTo` and Location (the same path there) say where (docs/migration.md)';

export const BEARER = 'bearerAuth';

export { openApiPath };

export function newApiRegistry(auth: DocumentAuth): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  if (auth.tokens) registry.registerComponent('securitySchemes', BEARER, {
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

/**
 * Adds one route's operation to the registry. With tokens, a route not
 * declared open requires the bearer scheme (the document's top-level
 * requirement) and may answer 401; without, no route requires anything and
 * none answers 401, and the open routes need no requirement of their own.
 */
export function describeRoute(registry: OpenAPIRegistry, route: Omit<RouteDeclaration, 'handle'>, auth: DocumentAuth): void {
  const names = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
  const described = (n: string) => route.request?.params?.[n] ?? paramDescription(n, route.path);
  const params = names.length ? z.object(Object.fromEntries(names.map((n) => [n, z.string().meta({ description: described(n) })]))) : undefined;
  const responses: RouteConfig['responses'] = {};
  for (const [status, r] of Object.entries(route.responses)) responses[status] = response(r);
  if (GUEST_ROUTE.test(route.path)) {
    const notFound = route.responses[404];
    responses[404] = response({ ...(notFound ?? { schema: ErrorSchema, description: 'No such guest' }), description: `${notFound?.description ?? 'No such guest'}${MOVED_404}` }, ['Location']);
  }
  if (!route.open && auth.tokens) {
    responses[401] ??= response({ description: 'Missing or wrong bearer token', schema: ErrorSchema }, ['WWW-Authenticate']);
  }
  responses[500] ??= response({ description: 'A fault in the agent (logged with the request id); nothing changed', schema: ErrorSchema });
  responses.default = response({ description: 'Any other error, e.g. 405 with Allow, or a status a backend stage chose', schema: ErrorSchema }, ['Allow']);
  const request: RouteConfig['request'] = {};
  if (params) request.params = params;
  if (route.request?.query) request.query = route.request.query;
  const body = route.request?.body;
  if (body) {
    request.body = {
      required: body.required === true,
      ...(body.description ? { description: body.description } : {}),
      content: { [body.contentType ?? 'application/json']: { schema: body.schema } },
    };
  }
  registry.registerPath({
    method: route.method,
    path: openApiPath(route.path),
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    // `{}` is "no token"; with the bearer scheme beside it, a token is optional.
    ...(route.open && auth.tokens ? { security: route.tokenOptional ? [{}, { [BEARER]: [] }] : [] } : {}),
    request,
    responses,
  });
}
