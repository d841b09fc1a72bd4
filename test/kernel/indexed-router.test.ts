/**
 * IndexedRouter narrows the routes @koa/router tests per request: for every
 * route of the agent and variants of its path (trailing slashes, case,
 * missing or extra segments), the match must be exactly Router#match's
 * over all routes.
 */
import Router from '@koa/router';
import { expect } from 'chai';
import { createRouter } from '../../core/http/app.js';
import { IndexedRouter } from '../../core/http/indexed-router.js';

/** Route modules only register handlers here; none is called. */
const unused = new Proxy({}, { get: () => () => undefined }) as never;

function variantsOf(route: string): string[] {
  const concrete = route.replace(/:[A-Za-z0-9_$]+/g, 'Ab-1');
  return [concrete, `${concrete}/`, `${concrete}//`, concrete.toUpperCase(), concrete.replace('Ab-1', ''), `${concrete}/more`, concrete.split('/').slice(0, -1).join('/') || '/', `/x${concrete}`];
}

function sameMatch(router: Router, path: string, method: string): void {
  const indexed = router.match(path, method);
  const plain = Router.prototype.match.call(router, path, method);
  expect(indexed.route, `${method} ${path}: route`).to.equal(plain.route);
  expect(indexed.path, `${method} ${path}: path layers`).to.deep.equal(plain.path);
  expect(indexed.pathAndMethod, `${method} ${path}: method layers`).to.deep.equal(plain.pathAndMethod);
}

describe('IndexedRouter', () => {
  it("matches every route of the agent, and every variant of its path, exactly as Router#match does", () => {
    const router = createRouter({ guests: unused, host: { version: 'test' } as never, events: unused, images: unused, snapshots: unused, metrics: unused, vnc: unused, consoles: unused });
    expect(router).to.be.instanceOf(IndexedRouter);
    const paths = new Set(router.stack.flatMap((layer) => variantsOf(String(layer.path))));
    expect(paths.size).to.be.greaterThan(100);
    for (const path of paths) for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) sameMatch(router, path, method);
  });

  it('tests routes of shapes it does not index (middleware, wildcards, embedded parameters) for every path, in order', () => {
    const router = new IndexedRouter();
    const noop = () => undefined;
    router.use(noop);
    router.get('/files/{*rest}', noop);
    router.get('/reports/:name.json', noop);
    router.get('/a/:id', noop);
    router.get('/A/b', noop);
    for (const path of ['/files/x/y', '/reports/q.json', '/a/1', '/a/b', '/a/B', '/', '/files']) sameMatch(router, path, 'GET');
    // Routes added after the first match are found too (the index is rebuilt).
    router.get('/late/:id', noop);
    sameMatch(router, '/late/1', 'GET');
    expect(router.match('/late/1', 'GET').route).to.equal(true);
  });
});
