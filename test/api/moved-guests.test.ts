/**
 * After a guest moved to another host, every one of its routes on the
 * source answers 404 HK_ERR_GUEST_MOVED naming the host, with a Location
 * header to the same path (and query) on the new agent: reads, actions,
 * metrics, jobs, snapshots, the console and VNC WebSockets. The record
 * survives a restart; a guest that comes back is served again and its
 * record goes. Here the move itself is the kernel call a completed
 * migration makes (recordMovedGuest); the real moves are test/migration.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { API_ROUTES } from '../../core/http/api-routes.js';
import { removeDir, waitFor } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';
import { startInProcessAgent, type InProcessAgent } from '../support/in-process-agent.js';
import { attemptWebSocket } from '../support/websocket-attempt.js';

const TARGET = 'http://127.0.0.1:9';

/** A route's path with its parameters filled in for guest `id`. */
function pathFor(routePath: string, id: string): string {
  return routePath.replace(':id', id).replace(/:([A-Za-z]+)/g, (_m, name: string) => `some-${name.toLowerCase()}`);
}

describe('API: a guest that moved to another host', function () {
  this.timeout(60_000);
  let agent: InProcessAgent;
  let dataDir: string;

  before(async () => {
    agent = await startInProcessAgent({ config: simulatorConfig({ accessLog: false }) });
    dataDir = agent.dataDir;
  });
  after(async () => {
    await agent?.stop();
    await removeDir(dataDir);
  });

  /** A running guest, then its move completed as the migration's source records it. */
  async function movedAway(hostId?: string): Promise<string> {
    const created = await agent.request('POST', '/guests?wait=10', { memory: 64, cpu: 1, disks: [{ size: 8 }] });
    expect(created.status, created.text).to.equal(200);
    const id: string = created.body.id;
    await agent.kernel.registry.remove(id);
    await agent.kernel.recordMovedGuest(id, { hostId, url: `${TARGET}/` });
    return id;
  }

  function expectMoved(answer: { status: number; body: any; headers: Headers }, id: string, location: string, hostId?: string): void {
    expect(answer.status, JSON.stringify(answer.body)).to.equal(404);
    expect(answer.body).to.include({ code: 404, error: 'HK_ERR_GUEST_MOVED' });
    expect(answer.body.message).to.contain(`guest ${id} is no longer on this host`).and.contain(hostId ? `host ${hostId} (${TARGET}/)` : TARGET);
    expect(answer.body.movedTo).to.include({ url: `${TARGET}/` });
    expect(answer.body.movedTo.hostId).to.equal(hostId);
    expect(Date.parse(answer.body.movedTo.movedAt)).to.be.closeTo(Date.now(), 60_000);
    expect(answer.headers.get('location'), 'the same path on the new agent').to.equal(location);
  }

  it('answers every route of the guest 404 HK_ERR_GUEST_MOVED with the host and a Location to the same path there', async () => {
    const id = await movedAway('host-b');
    const guestRoutes = API_ROUTES.filter((r) => r.path.startsWith('/guests/:id'));
    expect(guestRoutes.length, 'the guest routes: reads, actions, metrics, jobs, snapshots, console, vnc').to.be.greaterThan(20);
    for (const route of guestRoutes) {
      const path = pathFor(route.path, id);
      // Go clients send a null body with every action.
      const answer = await agent.request(route.method.toUpperCase(), path, route.method === 'get' ? undefined : 'null');
      expectMoved(answer, id, `${TARGET}${path}`, 'host-b');
    }
    // The query goes along.
    expectMoved(await agent.request('GET', `/guests/${id}/console/log?bytes=100`), id, `${TARGET}/guests/${id}/console/log?bytes=100`, 'host-b');
    expectMoved(await agent.request('POST', `/guests/${id}/shutdown?wait=5&timeout=3`, 'null'), id, `${TARGET}/guests/${id}/shutdown?wait=5&timeout=3`, 'host-b');
  });

  it('refuses the console and VNC WebSockets of a moved guest with the same plain 404, no upgrade', async () => {
    const id = await movedAway();
    for (const kind of ['console', 'vnc']) {
      const attempt = await attemptWebSocket(`${agent.url}/guests/${id}/${kind}`);
      if (attempt.upgraded) {
        attempt.ws.terminate();
        expect.fail(`${kind}: a WebSocket opened for a guest that moved away`);
      }
      expect(attempt.status).to.equal(404);
      expect(attempt.body.error).to.equal('HK_ERR_GUEST_MOVED');
      expect(attempt.headers.location).to.equal(`${TARGET}/guests/${id}/${kind}`);
    }
  });

  it('still answers an unknown path and a guest that never was here as before', async () => {
    const id = await movedAway();
    const nope = await agent.request('GET', `/guests/${id}/no-such-route`);
    expect(nope.status).to.equal(404);
    expect(nope.body.error).to.equal('HK_ERR_ROUTE_NOT_FOUND');
    expect(nope.headers.get('location')).to.equal(null);
    const other = await agent.request('GET', `/guests/${randomUUID()}`);
    expect(other.body.error).to.equal('HK_ERR_GUEST_NOT_FOUND');
    expect(other.headers.get('location')).to.equal(null);
    // The list and the other guests are untouched.
    expect((await agent.request('GET', '/guests')).status).to.equal(200);
  });

  it('keeps answering so after a restart, and serves the guest again once it is back (its record gone)', async () => {
    const id = await movedAway('host-c');
    await agent.stop();
    agent = await startInProcessAgent({ config: simulatorConfig({ accessLog: false }), dataDir });
    expectMoved(await agent.request('GET', `/guests/${id}`), id, `${TARGET}/guests/${id}`, 'host-c');
    // It comes back (a move back registers it; a create with its id does the same here).
    const back = await agent.request('POST', '/guests?wait=10', { id, memory: 64, cpu: 1, disks: [{ size: 8 }] });
    expect(back.status, back.text).to.equal(200);
    const got = await agent.request('GET', `/guests/${id}`);
    expect(got.status, got.text).to.equal(200);
    expect(got.headers.get('location')).to.equal(null);
    expect((await agent.request('GET', `/guests/${id}/jobs`)).status).to.equal(200);
    const moved = agent.kernel.moved;
    await waitFor(async () => moved.find(id) === undefined, 5000, 'the record of the guest that is back to go');
    // Gone for good: deleted here afterwards, it is a plain "no such guest", not "moved".
    expect((await agent.request('DELETE', `/guests/${id}?wait=10`, 'null')).status).to.equal(200);
    expect((await agent.request('GET', `/guests/${id}`)).body.error).to.equal('HK_ERR_GUEST_NOT_FOUND');
  });
});
