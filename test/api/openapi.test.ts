/**
 * The OpenAPI document: every Koa route has a documented operation (and
 * every operation a route), the document is valid OpenAPI 3.1, the agent
 * serves it and its viewer without a token, and the contract check (which
 * test/support/agent.ts runs on every response) exercises every operation
 * against a real agent and rejects answers that break the document.
 */
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { expect } from 'chai';
import { createRouter, type AppOptions } from '../../core/http/app.js';
import { API_ROUTES } from '../../core/http/api-routes.js';
import { openApiPath } from '../../core/http/openapi/api-registry.js';
import { buildOpenApiDocument } from '../../core/http/openapi/openapi-document.js';
import { VERSION } from '../../core/kernel.js';
import { agentsPerTest, suiteAgent } from '../support/agent-hooks.js';
import { checkResponse, ContractViolation, contractTally } from '../support/contract.js';
import { simulatorConfig } from '../support/configs.js';

const TOKEN = 'openapi-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

/** "METHOD /path" of every route the router serves (HEAD is Koa's echo of GET). */
function servedRoutes(): string[] {
  // Route handlers only run per request; registering them reads no dependency.
  const router = createRouter({ guests: {}, host: { version: VERSION }, events: {}, images: {}, snapshots: {} } as unknown as AppOptions);
  return router.stack.flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${openApiPath(String(layer.path))}`)).sort();
}

function documentedOperations(): string[] {
  const paths = buildOpenApiDocument(VERSION).paths ?? {};
  return Object.entries(paths)
    .flatMap(([p, item]) => Object.keys(item ?? {}).filter((k) => ['get', 'put', 'post', 'patch', 'delete'].includes(k)).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
}

describe('API: OpenAPI document', function () {
  it('documents every route the router serves, and nothing it does not', () => {
    const served = servedRoutes();
    const documented = documentedOperations();
    expect(served.length, 'the router has routes').to.be.greaterThan(20);
    expect(served.filter((r) => !documented.includes(r)), 'routes without a declaration (core/http/route.ts defineRoute) in core/http/api-routes.ts').to.deep.equal([]);
    expect(documented.filter((r) => !served.includes(r)), 'documented operations with no route').to.deep.equal([]);
  });

  it('declares each route once: a unique method and path, a unique operationId, plain path segments', () => {
    const keys = API_ROUTES.map((r) => `${r.method} ${r.path}`);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i), 'routes declared twice').to.deep.equal([]);
    const ids = API_ROUTES.map((r) => r.operationId);
    expect(ids.filter((k, i) => ids.indexOf(k) !== i), 'operationIds used twice').to.deep.equal([]);
    for (const route of API_ROUTES) {
      expect(route.path, `${route.operationId}: literal segments and whole-segment :params only`).to.match(/^(\/(:[A-Za-z0-9_]+|[A-Za-z0-9._-]+))+$/);
      if (route.websocket) expect(route.method, `${route.operationId}: a WebSocket upgrade is a GET`).to.equal('get');
    }
  });

  it('says what the agent accepts: optional action and snapshot bodies, null included; security only when tokens are configured', async () => {
    const withTokens = buildOpenApiDocument(VERSION);
    const schemas = withTokens.components?.schemas ?? {};
    /** The body schema of an operation, its $ref followed. */
    const bodyOf = (path: string, method: 'post' | 'delete') => {
      const body = withTokens.paths?.[path]?.[method]?.requestBody as { required?: boolean; content: Record<string, { schema: { $ref?: string } }> } | undefined;
      expect(body, `${method} ${path} declares a body`).to.not.equal(undefined);
      const ref = body!.content['application/json'].schema.$ref;
      return { required: body!.required, schema: ref ? schemas[ref.split('/').pop()!] : body!.content['application/json'].schema };
    };
    const nullable = (schema: unknown) => JSON.stringify(schema).includes('"null"');
    for (const [path, method] of [
      ['/guests/{id}/start', 'post'],
      ['/guests/{id}/shutdown', 'post'],
      ['/guests/{id}/delete', 'post'],
      ['/guests/{id}', 'delete'],
      ['/jobs/{id}', 'delete'],
      ['/guests/{id}/snapshots', 'post'],
      ['/guests/{id}/snapshots/{name}/rollback', 'post'],
      ['/guests/{id}/disks/{disk}/snapshots', 'post'],
    ] as const) {
      const { required, schema } = bodyOf(path, method);
      expect(required, `${method} ${path}: the body may be absent`).to.equal(false);
      expect(nullable(schema), `${method} ${path}: the body may be null (Go's json.Marshal(nil))`).to.equal(true);
    }
    expect(bodyOf('/images', 'post').required, 'a fetch needs its ImageRequest').to.equal(true);

    const noTokens = buildOpenApiDocument(VERSION, { tokens: false });
    expect((await new Validator().validate(noTokens as never)).valid).to.equal(true);
    expect(noTokens.security, 'no requirement at the top').to.equal(undefined);
    expect(noTokens.components?.securitySchemes ?? {}).to.deep.equal({});
    const operations = Object.values(noTokens.paths ?? {}).flatMap((item) => Object.values(item ?? {})) as Array<{ security?: unknown; responses?: Record<string, unknown> }>;
    expect(operations.length).to.equal(API_ROUTES.length);
    expect(operations.filter((op) => op.security !== undefined || op.responses?.['401'] !== undefined), 'no operation needs a token or answers 401').to.deep.equal([]);
    const withTokenOps = Object.values(withTokens.paths ?? {}).flatMap((item) => Object.values(item ?? {})) as Array<{ operationId: string; security?: unknown[]; responses?: Record<string, unknown> }>;
    for (const op of withTokenOps) {
      const open = API_ROUTES.find((r) => r.operationId === op.operationId)!.open === true;
      expect(op.responses?.['401'] === undefined, `${op.operationId}: 401 documented unless open`).to.equal(open);
      // Open routes override the document's bearer requirement; the others inherit it.
      expect(op.security !== undefined, `${op.operationId}: its own security only when open`).to.equal(open);
    }
  });

  it('is valid OpenAPI 3.1 with the bearer scheme, the job headers and the error shape', async () => {
    const document = buildOpenApiDocument(VERSION);
    const result = await new Validator().validate(document as never);
    expect(result.errors, 'validator errors').to.equal(undefined);
    expect(result.valid).to.equal(true);
    expect(document.openapi).to.equal('3.1.0');
    expect(document.components?.securitySchemes?.bearerAuth).to.deep.include({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(document.components?.headers ?? {})).to.include.members(['X-Guest-Job-ID', 'X-Guest-Job-Status', 'X-Request-ID']);
    expect(document.components?.schemas?.Error).to.deep.include({ required: ['message', 'code', 'error'] });
    const start = document.paths?.['/guests/{id}/start']?.post;
    expect(Object.keys(start?.responses ?? {})).to.include.members(['200', '202', '401', '404', '409', '500', '502', '504', 'default']);
    expect(start?.parameters?.map((p) => ('name' in p ? p.name : ''))).to.include.members(['id', 'wait']);
    expect(document.paths?.['/health']?.get?.security, '/health is open, a token optional').to.deep.equal([{}, { bearerAuth: [] }]);
    expect(document.paths?.['/openapi.json']?.get?.security, '/openapi.json is open').to.deep.equal([]);
  });

  describe('served by a real agent', function () {
    const agent = suiteAgent(() => ({ config: simulatorConfig({ auth: { tokens: [TOKEN] }, simulator: { failures: { reboot: 'simulated reboot failure' } } }) }));
    const agents = agentsPerTest();

    it('GET /openapi.json is the generated document, without a token', async () => {
      const res = await agent.request('GET', '/openapi.json');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal(JSON.parse(JSON.stringify(buildOpenApiDocument(VERSION))));
    });

    it('GET /openapi.json of an agent without tokens requires no token anywhere', async () => {
      const open = await agents.inProcess({ config: simulatorConfig() });
      const res = await open.request('GET', '/openapi.json');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal(JSON.parse(JSON.stringify(buildOpenApiDocument(VERSION, { tokens: false }))));
    });

    it('GET /docs and its assets are served by the agent itself, without a token', async () => {
      const page = await agent.request('GET', '/docs');
      expect(page.status).to.equal(200);
      expect(page.headers.get('content-type')).to.match(/^text\/html/);
      const sources = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
      expect(sources.every((s) => s.startsWith('/docs/')), `every asset is local: ${sources}`).to.equal(true);
      for (const source of sources) {
        const asset = await agent.request('GET', source);
        expect(asset.status, source).to.equal(200);
        expect(asset.text.length, source).to.be.greaterThan(100);
      }
      const missing = await agent.request('GET', '/docs/..%2Fpackage.json', undefined, auth);
      expect(missing.status).to.equal(404);
    });

    it('every operation answers as documented (checked by the contract validator)', async () => {
      const created = await agent.request('POST', '/guests?wait=10', { memory: 64, cpu: 1, disks: [{ size: 8 }], nics: [{}], metadata: { a: 'b' } }, auth);
      expect(created.status, created.text).to.equal(200);
      const id = created.body.id;
      const jobId = created.headers.get('x-guest-job-id')!;
      const calls: [string, string, unknown?][] = [
        ['GET', '/guests'],
        ['GET', `/guests/${id}`],
        ['GET', `/guests/${id}/metadata`],
        ['PATCH', `/guests/${id}/metadata`, { c: 'd', a: null }],
        ['GET', '/metadata'],
        ['PATCH', '/metadata', { rack: 'r1' }],
        ['GET', '/jobs?limit=5'],
        ['GET', `/jobs/${jobId}`],
        ['GET', `/guests/${id}/jobs`],
        ['GET', `/guests/${id}/jobs/${jobId}`],
        ['POST', `/guests/${id}/start?wait=10`],
        ['GET', `/guests/${id}/metrics/cpu`],
        ['GET', `/guests/${id}/metrics/nic`],
        ['GET', `/guests/${id}/metrics/disk`],
        ['POST', `/guests/${id}/reboot?wait=10`],
        ['POST', `/guests/${id}/suspend?wait=10`],
        ['POST', `/guests/${id}/restart?wait=10`],
        ['POST', `/guests/${id}/shutdown?wait=10&timeout=5`],
        ['POST', `/guests/${id}/start?wait=10`],
        ['POST', `/guests/${id}/poweroff`],
        ['GET', '/health'],
        ['GET', '/docs'],
        ['GET', '/docs/swagger-ui.css'],
        ['GET', '/nope'],
        ['GET', '/events?type=bogus'],
        ['POST', '/guests', { memory: 'lots' }],
        ['GET', `/guests/${id}`, undefined],
      ];
      for (const [method, path, body] of calls) await agent.request(method, path, body, auth);
      await agent.request('GET', '/guests', undefined, {}); // 401
      const removed = await agent.request('POST', `/guests/${id}/delete?wait=10`, undefined, auth);
      expect(removed.status, removed.text).to.be.oneOf([200, 500]);
      const again = await agent.request('POST', '/guests?wait=0', { memory: 64, disks: [{ size: 8 }] }, auth);
      await agent.request('DELETE', `/guests/${again.body.id}?wait=10`, undefined, auth);
      for (const op of ['createGuest', 'startGuest', 'getCpuMetrics', 'getHealth', 'getDocsPage', 'getDocsAsset', 'deleteGuestAlias', 'deleteGuest']) {
        expect(contractTally.get(op) ?? 0, `responses of ${op} checked`).to.be.greaterThan(0);
      }
    });

    it('GET /events answers a documented event stream', async () => {
      const abort = new AbortController();
      const res = await fetch(`${agent.url}/events?since=0`, { headers: auth, signal: abort.signal });
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      abort.abort();
      expect(res.headers.get('content-type')).to.match(/^text\/event-stream/);
      expect(first).to.match(/^(id|event|data|:)/m);
      expect(await checkResponse({ method: 'GET', url: `${agent.url}/events?since=0`, status: res.status, headers: res.headers, body: undefined })).to.equal('streamEvents');
    });

    it('the contract check rejects an answer that breaks the document', async () => {
      const res = await agent.request('GET', '/guests', undefined, auth);
      const wrongBody = checkResponse({ method: 'GET', url: `${agent.url}/guests`, status: 200, headers: res.headers, body: [{ id: 7 }] });
      await expectViolation(wrongBody, /body does not match/);
      const wrongStatus = checkResponse({ method: 'GET', url: `${agent.url}/guests`, status: 299, headers: res.headers, body: [] });
      // 299 falls to "default", whose body is the Error shape.
      await expectViolation(wrongStatus, /body does not match/);
      const noRequestId = new Headers(res.headers);
      noRequestId.delete('x-request-id');
      await expectViolation(checkResponse({ method: 'GET', url: `${agent.url}/guests`, status: 200, headers: noRequestId, body: [] }), /headers do not match/);
    });
  });
});

// A root hook: it runs once after every test file of this mocha run, so an
// operation counts as exercised when any test (of any file) got an answer
// from it through agent.request. Operations of the core API are exercised
// by this file; those of another tag (images...) are required when the run
// loaded that tag's own test folder (test/<tag>/), as the whole suite does.
const CORE_TAGS = new Set(['guests', 'actions', 'metrics', 'metadata', 'jobs', 'host', 'events', 'reference']);

function loadedTestFolders(suite: Mocha.Suite, into = new Set<string>()): Set<string> {
  if (suite.file) into.add(path.basename(path.dirname(suite.file)));
  for (const child of suite.suites) loadedTestFolders(child, into);
  return into;
}

after('every documented operation had a response checked against the document', function () {
  let root: Mocha.Suite = this.test!.parent!;
  while (root.parent) root = root.parent;
  const folders = loadedTestFolders(root);
  const required = Object.values(buildOpenApiDocument(VERSION).paths ?? {}).flatMap((item) =>
    Object.values(item ?? {}).flatMap((op) =>
      op && typeof op === 'object' && 'operationId' in op && (op.tags ?? []).some((t: string) => CORE_TAGS.has(t) || folders.has(t)) ? [String(op.operationId)] : [],
    ),
  );
  const unexercised = required.filter((op) => !contractTally.has(op));
  expect(unexercised, 'operations no test exercised through agent.request (add a call in a test of the route)').to.deep.equal([]);
});

async function expectViolation(check: Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await check;
  } catch (error) {
    expect(error).to.be.instanceOf(ContractViolation);
    expect((error as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected a ContractViolation matching ${message}`);
}
