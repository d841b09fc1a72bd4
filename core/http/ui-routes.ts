/**
 * GET /ui and its assets: the web console (docs/ui.md), built by
 * scripts/build-ui.mjs into dist/ui/ and served by the agent itself, since
 * hypervisor hosts are often air-gapped. The page is open (it asks for a
 * token itself); every API call it makes carries the token like any client.
 *
 * Only the files the build's manifest lists are ever read, by their exact
 * names: a request's path never becomes a file path. Assets are
 * content-hashed, so they are cached for a year; the page itself is
 * revalidated. Each asset is sent gzipped (the build wrote the .gz beside
 * it) to clients that accept it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import { Errors } from '../errors.js';
import { defineRoute } from './route.js';
import { err } from './openapi/common-docs.js';

/** dist/ui, beside dist/core (this file is dist/core/http/ui-routes.js once built). */
export const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ui');

/**
 * No CDN, no inline script, no plugin, no framing. Inline styles are
 * allowed: the terminal and chart libraries set element styles. WebSockets
 * (consoles, screens) go to the agent itself ('self' covers ws: there).
 */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
};

interface Manifest {
  files: Record<string, { bytes: number; gzip: number }>;
}

interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer;
}

/** The built files, read once on first use and kept (the whole console is well under a few MiB). */
class UiFiles {
  private manifest?: Promise<Manifest | undefined>;
  private readonly assets = new Map<string, Promise<Asset>>();
  private page?: Promise<Buffer | undefined>;

  constructor(private readonly dir: string) {}

  index(): Promise<Buffer | undefined> {
    this.page ??= readFile(path.join(this.dir, 'index.html')).catch(() => undefined);
    return this.page;
  }

  async asset(name: string): Promise<Asset | undefined> {
    const manifest = await (this.manifest ??= readFile(path.join(this.dir, 'manifest.json'), 'utf8').then(
      (text) => JSON.parse(text) as Manifest,
      () => undefined,
    ));
    const type = TYPES[path.extname(name)];
    if (!manifest || !type || !Object.hasOwn(manifest.files, name)) return undefined;
    let asset = this.assets.get(name);
    if (!asset) {
      const file = path.join(this.dir, 'assets', name);
      asset = Promise.all([readFile(file), readFile(`${file}.gz`)]).then(([raw, gzip]) => ({ type, raw, gzip }));
      // A failed read is not cached: the next request tries again.
      asset.catch(() => this.assets.delete(name));
      this.assets.set(name, asset);
    }
    return asset;
  }
}

export interface UiRouteDeps {
  /** Where the built console is (default dist/ui). */
  dir?: string;
}

function acceptsGzip(ctx: Context): boolean {
  return /\bgzip\b/i.test(ctx.get('accept-encoding'));
}

const notBuilt = () => Errors.routeNotFound('the web console is not built in this installation; run "npm run build" (it writes dist/ui)');

const getUiPage = defineRoute<UiRouteDeps>({
  method: 'get',
  path: '/ui',
  operationId: 'getUiPage',
  tag: 'reference',
  summary: 'The web console (docs/ui.md): guests, images, jobs, events, fleet, in the browser',
  description: 'Open to all: the page asks for a token when the agent has tokens and sends it with each API call it makes.',
  open: true,
  responses: { 200: { description: 'An HTML page', contentType: 'text/html' }, 404: err('The console was not built (npm run build)') },
  handle: ({ dir }: UiRouteDeps) => {
    const files = uiFiles(dir);
    return async (ctx) => {
      const page = await files.index();
      if (!page) throw notBuilt();
      ctx.set('Content-Security-Policy', UI_CSP);
      ctx.set('Cache-Control', 'no-cache');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.set('Referrer-Policy', 'no-referrer');
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = page;
    };
  },
});

const getUiAsset = defineRoute<UiRouteDeps>({
  method: 'get',
  path: '/ui/assets/:file',
  operationId: 'getUiAsset',
  tag: 'reference',
  summary: "The console's scripts and styles (content-hashed names, cached for a year)",
  open: true,
  request: { params: { file: 'a file name from the build (app-HASH.js...)' } },
  responses: { 200: { description: 'A script, style sheet, image or font (gzipped when accepted)', contentType: 'application/octet-stream' }, 404: err('No such asset') },
  handle: ({ dir }: UiRouteDeps) => {
    const files = uiFiles(dir);
    return async (ctx) => {
      const asset = await files.asset(ctx.params.file);
      if (!asset) throw Errors.routeNotFound(`no asset "${ctx.params.file}" in the web console (a page from an older build? reload /ui)`);
      ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.vary('Accept-Encoding');
      ctx.type = asset.type;
      if (acceptsGzip(ctx)) {
        ctx.set('Content-Encoding', 'gzip');
        ctx.body = asset.gzip;
      } else ctx.body = asset.raw;
    };
  },
});

/** One cache per folder: the page and its assets share it. */
const caches = new Map<string, UiFiles>();
function uiFiles(dir = UI_DIR): UiFiles {
  let files = caches.get(dir);
  if (!files) caches.set(dir, (files = new UiFiles(dir)));
  return files;
}

export const UI_ROUTES = [getUiPage, getUiAsset];
