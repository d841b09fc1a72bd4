/** The OpenAPI 3.1 document, generated from the RouteDocs and their zod schemas. */
import { OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { BEARER, describeRoute, newApiRegistry, type RouteDoc } from './api-registry.js';
import { ROUTE_DOCS } from './route-docs.js';

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

export function buildOpenApiDocument(version: string, routes: RouteDoc[] = ROUTE_DOCS): OpenApiDocument {
  const registry = newApiRegistry();
  for (const route of routes) describeRoute(registry, route);
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
    security: [{ [BEARER]: [] }],
    tags: [
      { name: 'guests', description: 'Create, list, get and delete guests' },
      { name: 'actions', description: 'Lifecycle actions; each queues a job on the guest' },
      { name: 'metrics', description: 'Counters from the backend' },
      { name: 'metadata', description: 'Host and guest metadata' },
      { name: 'jobs', description: 'The job log' },
      { name: 'images', description: 'Guest disk images: fetch, upload, list, delete (docs/images.md)' },
      { name: 'snapshots', description: 'Snapshots of a guest or one of its disks: take, list, roll back, download, delete (docs/snapshots.md)' },
      { name: 'events', description: 'The durable change feed' },
      { name: 'host', description: 'The agent itself' },
      { name: 'reference', description: 'This document and its viewer' },
    ],
  });
}
