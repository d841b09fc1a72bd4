/** The OpenAPI 3.1 document, generated from the route declarations (../route.ts) and their zod schemas. */
import { OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { API_ROUTES } from '../api-routes.js';
import type { RouteDeclaration } from '../route.js';
import { BEARER, describeRoute, newApiRegistry } from './api-registry.js';

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

export interface DocumentOptions {
  /** Whether the agent has tokens configured (the default: the document then says which routes need one). */
  tokens?: boolean;
  /** The routes to describe; every route the agent serves by default. */
  routes?: readonly Omit<RouteDeclaration, 'handle'>[];
}

export function buildOpenApiDocument(version: string, options: DocumentOptions = {}): OpenApiDocument {
  const auth = { tokens: options.tokens ?? true };
  const registry = newApiRegistry(auth);
  for (const route of options.routes ?? API_ROUTES) describeRoute(registry, route, auth);
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'hyperkern',
      version,
      description:
        "The REST API of a hyperkern node agent: mistify-agent's guest, job, metrics and metadata routes. " +
        'Every body is JSON; every error is `{message, code, error}`. Actions queue a job (X-Guest-Job-ID); `?wait=SECONDS` holds the answer until it ends.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    // Without tokens no route needs anything: the document requires nothing.
    ...(auth.tokens ? { security: [{ [BEARER]: [] }] } : {}),
    tags: [
      { name: 'guests', description: 'Create, list, get and delete guests' },
      { name: 'actions', description: 'Lifecycle actions; each queues a job on the guest' },
      { name: 'metrics', description: 'Counters from the backend' },
      { name: 'metadata', description: 'Host and guest metadata' },
      { name: 'jobs', description: 'The job log' },
      { name: 'images', description: 'Guest disk images: fetch, upload, list, delete (docs/images.md)' },
      { name: 'snapshots', description: 'Snapshots of a guest or one of its disks: take, list, roll back, download, delete (docs/snapshots.md)' },
      { name: 'console', description: "A guest's serial console: the WebSocket, tickets for browsers, the log (docs/console.md)" },
      { name: 'migration', description: 'Moving a guest to another agent: POST /guests/{id}/migrate, and the agent-to-agent protocol under /migrations (docs/migration.md)' },
      { name: 'events', description: 'The durable change feed' },
      { name: 'host', description: 'The agent itself' },
      { name: 'reference', description: 'This document and its viewer' },
    ],
  });
}
