/**
 * Every error class the API promises (400, 401, 404, 405, 409 elsewhere,
 * 413, 415) answers JSON `{message, code, error}` with no stack trace, and
 * bearer-token auth guards everything but /health.
 */
import { expect } from 'chai';
import type { ApiResponse } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

function expectJsonError(res: ApiResponse, status: number, message: RegExp): void {
  expect(res.status, `status for ${res.text}`).to.equal(status);
  expect(res.headers.get('content-type')).to.match(/application\/json/);
  expect(res.body).to.be.an('object');
  expect(res.body.code).to.equal(status);
  expect(res.body.message).to.match(message);
  expect(res.text, 'no stack trace leaves the server').to.not.match(/\bat .+\(.*:\d+:\d+\)|node_modules|\.js:\d+/);
}

describe('API: errors', function () {
  const agent = suiteAgent(() => ({ config: simulatorConfig({ bodyLimit: '2kb' }) }));

  it('400 on malformed JSON', async () => {
    expectJsonError(await agent.request('POST', '/guests', '{"memory": 12'), 400, /malformed JSON body/);
    expectJsonError(await agent.request('PATCH', '/metadata', 'not json'), 400, /malformed JSON body/);
  });

  it('400 on wrong types, naming the field', async () => {
    const cases: Array<[object, RegExp]> = [
      [{ memory: '512' }, /^memory: memory must be a number of MiB/],
      [{ cpu: 1.5 }, /^cpu: cpu must be a whole number/],
      [{ disks: 'vda' }, /^disks: /],
      [{ disks: [{ size: 'big' }] }, /^disks\.0\.size: size must be a number of MiB/],
      [{ nics: [{ mac: 'zz' }] }, /^nics\.0\.mac: a MAC address/],
      [{ metadata: { a: 1 } }, /^metadata\.a: metadata values must be strings/],
      [{ disks: [{ bus: 'floppy', size: 1 }] }, /^disks\.0\.bus: /],
    ];
    for (const [body, message] of cases) {
      expectJsonError(await agent.request('POST', '/guests', body), 400, message);
    }
  });

  it('400 on negative or absurd sizes', async () => {
    expectJsonError(await agent.request('POST', '/guests', { memory: -1 }), 400, /memory must be at least 1 MiB/);
    expectJsonError(await agent.request('POST', '/guests', { memory: 1e12 }), 400, /memory must be at most/);
    expectJsonError(await agent.request('POST', '/guests', { cpu: -1 }), 400, /cpu must be at least 1/);
    expectJsonError(await agent.request('POST', '/guests', { cpu: 100000 }), 400, /cpu must be at most 512/);
    expectJsonError(await agent.request('POST', '/guests', { disks: [{ size: -5 }] }), 400, /size must be at least 1 MiB/);
    expectJsonError(await agent.request('POST', '/guests', { disks: [{ size: 2 ** 40 }] }), 400, /size must be at most .* MiB \(64 TiB\)/);
    expectJsonError(await agent.request('POST', '/guests', { disks: [{}] }), 400, /disks\.0: give a size in MiB or an image/);
  });

  it('400 on a body that is not an object', async () => {
    expectJsonError(await agent.request('POST', '/guests', '[1,2]'), 400, /must be a JSON object/);
    expectJsonError(await agent.request('POST', '/guests', '"text"'), 400, /must be a JSON object/);
    expectJsonError(await agent.request('POST', '/guests', 'text'), 400, /malformed JSON body/);
  });

  it('404 on unknown routes', async () => {
    expectJsonError(await agent.request('GET', '/nope'), 404, /no route for GET \/nope/);
    expectJsonError(await agent.request('POST', '/guests/x/teleport'), 404, /no route/);
  });

  it('405 with Allow on a wrong method', async () => {
    const res = await agent.request('PUT', '/guests');
    expectJsonError(res, 405, /PUT is not allowed on \/guests/);
    expect(res.headers.get('allow')).to.include('GET').and.include('POST');
    const single = await agent.request('DELETE', '/metadata');
    expectJsonError(single, 405, /not allowed/);
    expect(single.headers.get('allow')).to.include('PATCH');
  });

  it('413 when the body is over the configured limit', async () => {
    const big = { metadata: { blob: 'x'.repeat(5000) } };
    expectJsonError(await agent.request('POST', '/guests', big), 413, /body too large/);
  });

  it('415 for a body explicitly typed as something other than JSON', async () => {
    expectJsonError(await agent.request('POST', '/guests', '<guest/>', { 'content-type': 'application/xml' }), 415, /request bodies are JSON/);
  });

  it('echoes a request id, or makes one', async () => {
    const mine = await agent.request('GET', '/guests', undefined, { 'x-request-id': 'abc-123' });
    expect(mine.headers.get('x-request-id')).to.equal('abc-123');
    const made = await agent.request('GET', '/guests');
    expect(made.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
  });

  it('logs one JSON line per request with its request id', async () => {
    await agent.request('GET', '/metadata', undefined, { 'x-request-id': 'trace-me-42' });
    await new Promise((r) => setTimeout(r, 100));
    const line = agent.logs.map((l) => JSON.parse(l)).find((e) => e.reqId === 'trace-me-42');
    expect(line, 'an access log entry with the request id').to.include({ method: 'GET', url: '/metadata', status: 200, msg: 'request' });
    expect(line.ms).to.be.a('number');
  });
});

describe('API: bearer-token auth', function () {
  const configToken = 'config-token-0123456789abcdef';
  const envToken = 'env-token-0123456789abcdef';
  const agent = suiteAgent(() => ({ config: simulatorConfig({ auth: { tokens: [configToken] } }), env: { HYPERKERN_TOKENS: envToken } }));

  it('401 without a token, with WWW-Authenticate', async () => {
    const res = await agent.request('GET', '/guests');
    expectJsonError(res, 401, /authentication required/);
    expect(res.headers.get('www-authenticate')).to.match(/^Bearer/);
  });

  it('401 with a wrong token', async () => {
    expectJsonError(await agent.request('GET', '/guests', undefined, { authorization: 'Bearer wrong-token-0123456789' }), 401, /invalid bearer token/);
    expectJsonError(await agent.request('GET', '/guests', undefined, { authorization: `Basic ${configToken}` }), 401, /authentication required/);
  });

  it('accepts tokens from the config and from HYPERKERN_TOKENS', async () => {
    expect((await agent.request('GET', '/guests', undefined, { authorization: `Bearer ${configToken}` })).status).to.equal(200);
    expect((await agent.request('POST', '/guests', {}, { authorization: `Bearer ${envToken}` })).status).to.equal(202);
  });

  it('never guards /health, but shows its details only with a valid token', async () => {
    const liveness = ['status', 'version', 'uptimeSeconds'];
    const details = ['guests', 'jobs', 'logLinesDropped', 'plugins'];
    const anonymous = await agent.request('GET', '/health');
    expect(anonymous.status).to.equal(200);
    expect(anonymous.body).to.have.keys(liveness);
    expect(anonymous.body.status).to.equal('ok');
    // A wrong or malformed token is not a 401 here: a load balancer with a stale token still sees the agent alive.
    for (const authorization of ['Bearer wrong-token-0123456789', 'Basic xyz', `Bearer ${configToken}x`]) {
      const wrong = await agent.request('GET', '/health', undefined, { authorization });
      expect(wrong.status, authorization).to.equal(200);
      expect(wrong.body, authorization).to.have.keys(liveness);
    }
    for (const token of [configToken, envToken]) {
      const full = await agent.request('GET', '/health', undefined, { authorization: `Bearer ${token}` });
      expect(full.status).to.equal(200);
      expect(full.body).to.have.keys([...liveness, ...details]);
      expect(full.body.plugins).to.have.keys('guard', 'simulator', 'images');
    }
    expect(anonymous.text, 'nothing of a plugin without a token').to.not.match(/simulat|machines/);
  });
});
