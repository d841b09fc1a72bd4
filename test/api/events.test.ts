/**
 * GET /events against the real agent (real SQLite file): a real
 * EventSource client follows the stream across kill -9 of a child agent and
 * a restart under load, and what it received equals the events table and
 * the state the store holds; filters, reset, auth, slow-client cut-off
 * (in-process).
 */
import { expect } from 'chai';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { EVENT_TYPES, type KernelEvent } from '../../core/events/kernel-event.js';
import { STATE_FILE } from '../../core/state/state-store.js';
import { waitFor } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { readSse } from '../support/sse-reader.js';
import { sqliteQuery } from '../support/sqlite-query.js';

/** Keeps a few clients busy with guest and metadata changes until stopped (bounded in count). */
function generateLoad(target: () => string, workers: number, maxRequests: number) {
  let stop = false;
  let sent = 0;
  let acknowledged = 0;
  const call = async (method: string, urlPath: string, body?: unknown) => {
    sent++;
    const res = await fetch(target() + urlPath, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(10000),
    });
    const json = (await res.json().catch(() => undefined)) as { id?: string } | undefined;
    if (res.ok) acknowledged++;
    return json;
  };
  const worker = async (w: number) => {
    for (let i = 0; !stop && sent < maxRequests; i++) {
      try {
        const guest = await call('POST', '/guests', { memory: 128, metadata: { worker: String(w), i: String(i) } });
        if (guest?.id) {
          await call('PATCH', `/guests/${guest.id}/metadata`, { touched: String(i) });
          await call('POST', `/guests/${guest.id}/start`);
        }
        await call('PATCH', '/metadata', { [`w${w}`]: String(i) });
      } catch {
        // The agent is down (killed on purpose): try again shortly.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return {
    get acknowledged() {
      return acknowledged;
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

describe('GET /events', function () {
  this.timeout(120000);
  const agents = agentsPerTest();

  it('an EventSource across kill -9 and a restart under load receives exactly the committed events, in order, matching the stored state', async () => {
    const config = simulatorConfig({ simulator: { delays: { start: 20 } } });
    let agent = await agents.spawn({ config });
    let current = agent.url;
    const received: KernelEvent[] = [];
    const resets: string[] = [];
    let opens = 0;
    // The agent comes back on another port: the client's fetch follows it.
    const es = new EventSource(`${current}/events?since=0`, {
      fetch: (input, init) => fetch(String(input).replace(/^http:\/\/[^/]+/, current), init),
    });
    es.addEventListener('open', () => opens++);
    for (const type of EVENT_TYPES) es.addEventListener(type, (m) => received.push(JSON.parse(m.data)));
    es.addEventListener('reset', (m) => resets.push(m.data));
    try {
      await waitFor(async () => opens > 0, 10000, 'the stream to open');
      const load = generateLoad(() => current, 4, 4000);
      await waitFor(async () => received.length > 300, 30000, 'events under load');
      await agent.kill9();
      const dataDir = agent.dataDir;
      agent = await agents.spawn({ config, dataDir });
      current = agent.url;
      await waitFor(async () => opens > 1, 20000, 'the client to reconnect');
      const beforeStop = received.length;
      await waitFor(async () => received.length > beforeStop + 300, 30000, 'events after the restart');
      await load.stop();
      // Let running jobs end, then stop the agent cleanly: everything committed is in the file.
      await waitFor(async () => (await agent.request('GET', '/health')).body?.jobs?.running === 0 && (await agent.request('GET', '/health')).body?.jobs?.queued === 0, 30000, 'jobs to drain');
      const latest = async () => (await sqliteQuery<{ id: number }>(path.join(dataDir, STATE_FILE), 'SELECT MAX(id) AS id FROM events'))[0].id;
      const newest = await latest();
      await waitFor(async () => received.length > 0 && received[received.length - 1].id >= newest, 20000, `the client to catch up to ${newest}`);
      es.close();
      await agent.stop();
      expect(load.acknowledged, 'the load did real work').to.be.greaterThan(150);

      const rows = await sqliteQuery<{ id: number; body: string }>(path.join(dataDir, STATE_FILE), 'SELECT id, body FROM events ORDER BY id');
      expect(resets, 'nothing was past retention').to.deep.equal([]);
      expect(rows[0].id).to.equal(1);
      expect(received.map((e) => e.id), 'every committed event once, in order').to.deep.equal(rows.map((r) => r.id));
      expect(received).to.deep.equal(rows.map((r) => JSON.parse(r.body)));

      // The last event about each guest and job is what the store holds.
      const lastGuest = new Map<string, unknown>();
      const lastJob = new Map<string, unknown>();
      let lastHost: unknown;
      for (const event of received) {
        if (event.type === 'guest.deleted') lastGuest.delete(event.data.guestId);
        else if (event.type.startsWith('guest.')) lastGuest.set(event.guest!, (event.data as { guest: unknown }).guest);
        else if (event.type.startsWith('job.')) {
          const job = (event.data as { job: { ID: string } }).job;
          lastJob.set(job.ID, job);
        } else if (event.type === 'host.metadata') lastHost = event.data.metadata;
      }
      const stored = await sqliteQuery<{ key: string; value: string }>(path.join(dataDir, STATE_FILE), 'SELECT key, value FROM keyv');
      const value = (row: { value: string }) => (JSON.parse(row.value) as { value: unknown }).value;
      const guests = stored.filter((r) => r.key.startsWith('guest:'));
      const jobs = stored.filter((r) => r.key.startsWith('job:'));
      expect(guests.length).to.equal(lastGuest.size);
      for (const row of guests) expect(lastGuest.get(row.key.slice(6)), row.key).to.deep.equal(value(row));
      expect(jobs.length).to.equal(lastJob.size);
      for (const row of jobs) expect(lastJob.get(row.key.slice(4)), row.key).to.deep.equal((value(row) as { job: unknown }).job);
      expect(lastHost).to.deep.equal(value(stored.find((r) => r.key === 'host:metadata')!));
    } finally {
      es.close();
    }
  });

  it('filters by guest and type, resumes with ?since, resets a foreign id, refuses bad parameters', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig() });
    const a = (await agent.request('POST', '/guests?wait=10', { memory: 128 })).body.id as string;
    const b = (await agent.request('POST', '/guests?wait=10', { memory: 128 })).body.id as string;
    await agent.request('PATCH', '/metadata', { site: 'lab' });

    const onlyA = await readSse(`${agent.url}/events?since=0&guest=${a}&type=job`);
    await waitFor(async () => onlyA.messages.length >= 3, 10000, 'guest a job events');
    onlyA.close();
    expect(onlyA.headers['content-type']).to.match(/^text\/event-stream/);
    expect(onlyA.messages.map((m) => m.event)).to.deep.equal(['job.queued', 'job.started', 'job.completed']);
    for (const m of onlyA.messages) expect(JSON.parse(m.data).guest).to.equal(a);

    const host = await readSse(`${agent.url}/events?since=0&type=host,guest.created`);
    await waitFor(async () => host.messages.length >= 3, 10000, 'host and created events');
    host.close();
    expect(host.messages.map((m) => m.event)).to.deep.equal(['guest.created', 'guest.created', 'host.metadata']);
    expect(JSON.parse(host.messages[1].data).guest).to.equal(b);

    // Last-Event-ID wins over ?since (what a reconnecting EventSource sends).
    const all = await readSse(`${agent.url}/events?since=0`);
    await waitFor(async () => all.messages.length >= 11, 10000, 'all events');
    all.close();
    const ids = all.messages.map((m) => Number(m.id));
    expect(ids).to.deep.equal(ids.map((_, i) => i + 1));
    const resumed = await readSse(`${agent.url}/events?since=0`, { 'last-event-id': String(ids[ids.length - 2]) });
    await waitFor(async () => resumed.messages.length >= 1, 10000, 'the resumed event');
    await agent.request('PATCH', '/metadata', { live: 'yes' });
    await waitFor(async () => resumed.messages.length >= 2, 10000, 'a live event after the replay');
    resumed.close();
    expect(resumed.messages.map((m) => Number(m.id))).to.deep.equal([ids[ids.length - 1], ids[ids.length - 1] + 1]);

    const foreign = await readSse(`${agent.url}/events?since=999999`);
    await waitFor(async () => foreign.messages.length >= 1, 10000, 'a reset');
    foreign.close();
    expect(foreign.messages[0].event).to.equal('reset');
    expect(JSON.parse(foreign.messages[0].data)).to.include({ requested: 999999, resumeAfter: ids[ids.length - 1] + 1 });

    for (const bad of ['/events?since=-1', '/events?since=abc', '/events?type=jobs']) {
      const res = await agent.request('GET', bad);
      expect(res.status, bad).to.equal(400);
      expect(res.body.error).to.equal('HK_ERR_BAD_REQUEST');
    }
  });

  it('needs the bearer token like every route, and sends heartbeats', async () => {
    const token = 'events-test-token-0123456789';
    const agent = await agents.inProcess({ config: simulatorConfig({ auth: { tokens: [token] }, events: { heartbeatSeconds: 0.2 } }) });
    const refused = await agent.request('GET', '/events');
    expect(refused.status).to.equal(401);
    const stream = await readSse(`${agent.url}/events`, { authorization: `Bearer ${token}` });
    expect(stream.status).to.equal(200);
    await waitFor(async () => stream.comments.includes('heartbeat'), 10000, 'a heartbeat');
    stream.close();
  });

  it('cuts off a client that stops reading with a final overflow event, without slowing the agent', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig({ events: { clientBufferBytes: 65536 } }) });
    const stalled = await readSse(`${agent.url}/events`);
    stalled.response.pause();
    // ~60 KB per event: a few dozen fill the socket buffers and then the bound.
    const big = 'x'.repeat(60000);
    const started = performance.now();
    for (let i = 0; i < 80; i++) {
      const res = await agent.request('PATCH', '/metadata', { big: `${i}${big}` });
      expect(res.status).to.equal(200);
    }
    const perPatchMs = (performance.now() - started) / 80;
    stalled.response.resume();
    await stalled.ended;
    const last = stalled.messages[stalled.messages.length - 1];
    expect(last.event, 'the last thing it gets says why').to.equal('overflow');
    const info = JSON.parse(last.data);
    expect(info.reason).to.match(/unread/);
    expect(info.lastEventId).to.be.a('number');
    expect(stalled.messages.length).to.be.lessThan(81);
    // Another client meanwhile is served normally.
    expect((await agent.request('GET', '/metadata')).status).to.equal(200);
    expect(perPatchMs, 'writes never waited for the stalled reader').to.be.lessThan(2000);
  });
});
