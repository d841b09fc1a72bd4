/**
 * IndexedRouter dispatches a request by the small Router of the routes of
 * its path's shape: for every route of the agent and variants of its path
 * (trailing slashes, case, missing or extra segments), that match must be
 * exactly Router#match's over all routes, and a real request must reach the
 * same handler with the same params.
 */
import Router from '@koa/router';
import { expect } from 'chai';
import Koa from 'koa';
import type { AddressInfo } from 'node:net';
import { createRouter } from '../../core/http/app.js';
import { IndexedRouter } from '../../core/http/indexed-router.js';

/** Route modules only make handlers here; none is called. */
const unused = new Proxy({}, { get: () => () => undefined }) as never;

function variantsOf(route: string): string[] {
  const concrete = route.replace(/:[A-Za-z0-9_$]+/g, 'Ab-1');
  return [concrete, `${concrete}/`, `${concrete}//`, concrete.toUpperCase(), concrete.replace('Ab-1', ''), `${concrete}/more`, concrete.split('/').slice(0, -1).join('/') || '/', `/x${concrete}`];
}

type Match = ReturnType<Router['match']>;
/** A match as what it selects: each layer's path, methods and handlers (the small Routers hold their own Layer objects). */
const shown = (layers: Match['path']) => layers.map((l) => ({ path: l.path, methods: l.methods, stack: l.stack }));

function sameMatch(router: IndexedRouter, path: string, method: string): void {
  const indexed = router.matchIndexed(path, method);
  const plain = router.match(path, method);
  expect(indexed.route, `${method} ${path}: route`).to.equal(plain.route);
  expect(shown(indexed.path), `${method} ${path}: path layers`).to.deep.equal(shown(plain.path));
  expect(shown(indexed.pathAndMethod), `${method} ${path}: method layers`).to.deep.equal(shown(plain.pathAndMethod));
}

describe('IndexedRouter', () => {
  it('matches every route of the agent, and every variant of its path, exactly as Router#match over all routes does', () => {
    const router = createRouter({ guests: unused, host: { version: 'test' } as never, events: unused, images: unused, snapshots: unused, metrics: unused, vnc: unused, consoles: unused, migrations: unused });
    expect(router).to.be.instanceOf(IndexedRouter);
    const paths = new Set(router.stack.flatMap((layer) => variantsOf(String(layer.path))));
    expect(paths.size).to.be.greaterThan(100);
    for (const path of paths) for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) sameMatch(router, path, method);
  });

  it('keeps the order of routes whose first segment is a parameter beside literal ones, and takes routes added after the first match', () => {
    const router = new IndexedRouter();
    const noop = () => undefined;
    router.add('get', '/:kind/:id', noop);
    router.add('get', '/a/:id', noop);
    router.add('get', '/A/b', noop);
    router.add('get', '/', noop);
    for (const path of ['/a/1', '/a/b', '/A/B', '/x/1', '/', '/a', '/a/b/c']) sameMatch(router, path, 'GET');
    router.add('get', '/late/:id', noop);
    sameMatch(router, '/late/1', 'GET');
    expect(router.matchIndexed('/late/1', 'GET').route).to.equal(true);
  });

  it('refuses paths it cannot index (wildcards, embedded parameters)', () => {
    const router = new IndexedRouter();
    for (const path of ['/files/{*rest}', '/reports/:name.json', 'no-slash', '/a/(b)']) {
      expect(() => router.add('get', path, () => undefined), path).to.throw(/only literal segments/);
    }
  });

  it('dispatches a real request to the same handler with the same params, and passes on what no route takes', async () => {
    const router = new IndexedRouter();
    router.add('get', '/guests/:id', (ctx) => {
      ctx.body = { route: 'guest', id: ctx.params.id };
    });
    router.add('post', '/guests/:id/start', (ctx) => {
      ctx.body = { route: 'start', id: ctx.params.id };
    });
    const app = new Koa();
    app.use(router.routes());
    app.use((ctx) => {
      ctx.status = 404;
      ctx.body = { route: 'none', allowed: router.match(ctx.path, ctx.method).path.flatMap((l) => l.methods) };
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const get = async (method: string, path: string) => (await fetch(base + path, { method })).json();
      expect(await get('GET', '/guests/a%20b')).to.deep.equal({ route: 'guest', id: 'a b' });
      expect(await get('GET', '/GUESTS/x/')).to.deep.equal({ route: 'guest', id: 'x' });
      expect(await get('POST', '/guests/x/start')).to.deep.equal({ route: 'start', id: 'x' });
      expect(await get('GET', '/guests/x/start')).to.deep.equal({ route: 'none', allowed: ['POST'] });
      expect(await get('GET', '/nope')).to.deep.equal({ route: 'none', allowed: [] });
    } finally {
      server.close();
    }
  });
});
