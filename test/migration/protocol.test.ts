/**
 * The edges of moving guests, without QEMU (a simulator agent): what the
 * migrate request and every route of the agent-to-agent protocol answer to
 * bad or unknown input, a guest whose backend cannot move guests (501), an
 * id the target already has (409), and the protocol behind auth (401).
 * The moves themselves are in move.test.ts.
 */
import { expect } from 'chai';
import { removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

describe('migration: requests and the agent-to-agent protocol (simulator)', function () {
  this.timeout(60_000);
  let agent: RunningAgent;
  let guestId: string;

  before(async () => {
    agent = await startAgent({ config: simulatorConfig() });
    const created = await agent.request('POST', '/guests?wait=30', { memory: 64, cpu: 1 });
    expect(created.status, created.text).to.equal(200);
    guestId = created.body.id;
  });
  after(async () => {
    await agent?.stop();
    if (agent) await removeDir(agent.dataDir);
  });

  const prepareBody = (guest: object) => ({ id: UNKNOWN, guest, live: false, diskBytes: {}, listenHost: '127.0.0.1', source: { url: 'http://127.0.0.1:9' } });

  it('POST /guests/{id}/migrate: 404 unknown guest, 400 without a target, 501 when the backend cannot move guests', async () => {
    const unknown = await agent.request('POST', `/guests/${UNKNOWN}/migrate`, { url: 'http://127.0.0.1:9' });
    expect(unknown.status, unknown.text).to.equal(404);
    for (const body of [null, {}, { url: 'not a url' }, { url: 'ftp://x' }, { url: 'http://h:1/path' }, { url: 'http://h:1', bandwidth: 0 }, [1]]) {
      const bad = await agent.request('POST', `/guests/${guestId}/migrate`, body);
      expect(bad.status, `${JSON.stringify(body)}: ${bad.text}`).to.equal(400);
      expect(bad.body).to.have.keys('message', 'code', 'error');
    }
    const unsupported = await agent.request('POST', `/guests/${guestId}/migrate`, { url: 'http://127.0.0.1:9', token: '' });
    expect(unsupported.status, unsupported.text).to.equal(501);
    expect(unsupported.body.message).to.match(/cannot move guests/);
    // Nothing was queued.
    expect((await agent.request('GET', `/guests/${guestId}/jobs`)).body.map((j: { Action: string }) => j.Action)).to.not.include('migrate');
  });

  it('the protocol: 400 for a malformed body, 404 for an unknown move, 409 for an id this host has', async () => {
    for (const path of ['/migrations', '/migrations/check']) {
      const bad = await agent.request('POST', path, { id: UNKNOWN, guest: { id: 'x' } });
      expect(bad.status, bad.text).to.equal(400);
      expect(bad.body.message).to.match(/^migration request: /);
    }
    const taken = await agent.request('POST', '/migrations/check', prepareBody({ id: guestId, type: '', memory: 64, cpu: 1, state: 'off', disks: [], nics: [], metadata: {} }));
    expect(taken.status, taken.text).to.equal(409);
    expect(taken.body.message).to.match(/already exists on this host/);
    const fresh = await agent.request('POST', '/migrations', prepareBody({ id: UNKNOWN, type: '', memory: 64, cpu: 1, state: 'off', disks: null, nics: null, metadata: null }));
    expect(fresh.status, fresh.text).to.equal(501);
    const tooBig = await agent.request('POST', '/migrations/check', prepareBody({ id: UNKNOWN, type: '', memory: 1 << 30, cpu: 1, state: 'off', disks: [], nics: [], metadata: {} }));
    expect(tooBig.status, tooBig.text).to.equal(422);
    expect(tooBig.body.message).to.match(/MiB available/);
    expect((await agent.request('GET', `/migrations/${UNKNOWN}`)).status).to.equal(404);
    expect((await agent.request('PUT', `/migrations/${UNKNOWN}/disks/vda`, 'bytes')).status).to.equal(404);
    expect((await agent.request('POST', `/migrations/${UNKNOWN}/commit`)).status).to.equal(404);
    expect((await agent.request('POST', `/migrations/${UNKNOWN}/abort`)).status).to.equal(404);
    expect((await agent.request('DELETE', `/migrations/${UNKNOWN}`)).status).to.equal(404);
  });

  it('the protocol needs a token where the agent has them', async () => {
    const guarded = await startAgent({ config: simulatorConfig({ auth: { tokens: ['t0k3n-for-migration'] } }) });
    try {
      expect((await guarded.request('GET', `/migrations/${UNKNOWN}`)).status).to.equal(401);
      expect((await guarded.request('POST', '/migrations', {})).status).to.equal(401);
      expect((await guarded.request('GET', `/migrations/${UNKNOWN}`, undefined, { authorization: 'Bearer t0k3n-for-migration' })).status).to.equal(404);
    } finally {
      await guarded.stop();
      await removeDir(guarded.dataDir);
    }
  });
});
