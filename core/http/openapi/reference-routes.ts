/**
 * GET /openapi.json and GET /docs: the document and an interactive viewer
 * (Swagger UI) whose every asset is served from the agent's own
 * node_modules, since hypervisor hosts are often air-gapped.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import { Errors } from '../../errors.js';
import { defineRoute } from '../route.js';
import { sendJsonText } from '../send-json.js';
import { err } from './common-docs.js';

export interface ReferenceRouteDeps {
  version: string;
  /** Tokens are configured: the document says which routes need one (else none does). */
  tokens: boolean;
}

const viewerDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The viewer's files the page loads, and their types; nothing else is served. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hyperkern API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: 'StandaloneLayout',
  validatorUrl: null,
  persistAuthorization: true,
});
</script>
</body>
</html>
`;

const getOpenApiDocument = defineRoute({
  method: 'get',
  path: '/openapi.json',
  operationId: 'getOpenApiDocument',
  tag: 'reference',
  summary: 'This document (OpenAPI 3.1)',
  open: true,
  responses: { 200: { description: 'The OpenAPI document', schema: z.looseObject({ openapi: z.string() }) } },
  handle: ({ version, tokens }: ReferenceRouteDeps) => {
    // Generated once: the routes and schemas do not change while the agent runs.
    // The generator (zod-to-openapi) is imported on the first request for it,
    // not at boot: few clients ever ask, and the agent answers sooner without it.
    let documentText: string | undefined;
    return async (ctx) => {
      documentText ??= JSON.stringify((await import('./openapi-document.js')).buildOpenApiDocument(version, { tokens }));
      sendJsonText(ctx, 200, documentText);
    };
  },
});

const getDocsPage = defineRoute<ReferenceRouteDeps>({
  method: 'get',
  path: '/docs',
  operationId: 'getDocsPage',
  tag: 'reference',
  summary: 'The interactive API reference (served by the agent, no CDN)',
  open: true,
  responses: { 200: { description: 'An HTML page', contentType: 'text/html' } },
  handle: () => (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = PAGE;
  },
});

const getDocsAsset = defineRoute<ReferenceRouteDeps>({
  method: 'get',
  path: '/docs/:asset',
  operationId: 'getDocsAsset',
  tag: 'reference',
  summary: "The viewer's scripts and styles",
  open: true,
  request: { params: { asset: "the file's name (swagger-ui.css...)" } },
  responses: { 200: { description: 'A script, style sheet or image', contentType: 'application/octet-stream' }, 404: err('No such asset') },
  handle: () => {
    const cache = new Map<string, Buffer>();
    return async (ctx) => {
      const name = ctx.params.asset;
      const type = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
      if (!type) throw Errors.routeNotFound(`no asset "${name}" in the API reference`);
      let bytes = cache.get(name);
      if (!bytes) cache.set(name, (bytes = await readFile(path.join(viewerDir, name))));
      ctx.type = type;
      ctx.set('Cache-Control', 'public, max-age=86400');
      ctx.body = bytes;
    };
  },
});

export const REFERENCE_ROUTES = [getOpenApiDocument, getDocsPage, getDocsAsset];
