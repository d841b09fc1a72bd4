/**
 * The fleet link against a real etcd (Debian's etcd-server on loopback):
 * ten simulator agents register, their guests' changes reach etcd within a
 * second, kill -9 lets the host key expire with its lease, SIGTERM deletes
 * it at once, and a 30 s etcd outage under load leaves every local API
 * answering and etcd matching every agent exactly afterwards.
 */
import { expect } from 'chai';
import type { Etcd3, Watcher } from 'etcd3';
import { removeDir, waitFor, type RunningAgent } from '../support/agent.js';
import { startEtcd, type EtcdServer } from '../support/etcd-server.js';
import { etcdClient, expectedSummary, readTree, startFleetAgent, testPrefix, waitConverged } from './world.js';

const AGENTS = 10;
const TTL_SECONDS = 4;
const OUTAGE_MS = 30_000;

describe('fleet link on a real etcd', function () {
  this.timeout(240_000);
  let etcd: EtcdServer;
  let client: Etcd3;
  const prefix = testPrefix();
  const agents: RunningAgent[] = [];
  const hostIds: string[] = [];

  before(async function () {
    etcd = await startEtcd();
    client = etcdClient(etcd.endpoint);
    // Agent 2 has a tiny queue so that the outage below makes it collapse to "resync needed".
    const started = await Promise.all(
      Array.from({ length: AGENTS }, (_, i) =>
        startFleetAgent({
          endpoint: etcd.endpoint,
          prefix,
          hostId: `host-${i}`,
          leaseTtlSeconds: TTL_SECONDS,
          memoryMiB: 4096 * (i + 1),
          fleet: i === 2 ? { maxQueuedChanges: 3 } : {},
        }),
      ),
    );
    agents.push(...started);
    hostIds.push(...started.map((_, i) => `host-${i}`));
  });

  after(async function () {
    for (const agent of agents) await agent.kill9();
    for (const agent of agents) await removeDir(agent.dataDir);
    client?.close();
    await etcd?.dispose();
  });

  it('registers all ten agents under their leases with URL, version, capacity and start time', async () => {
    const hosts = await waitFor(
      async () => {
        const tree = await readTree(client, prefix);
        const found = hostIds.map((id) => tree.get(`${prefix}/hosts/${id}`));
        return found.every(Boolean) ? found : undefined;
      },
      20_000,
      'ten host keys',
    );
    for (const [i, host] of hosts.entries()) {
      expect(host.apiUrl, `host-${i} advertises its API`).to.equal(agents[i].url);
      expect(host.version).to.match(/^\d+\.\d+\.\d+/);
      expect(host.health).to.equal('ok');
      expect(host.memoryMiB).to.deep.equal({ total: 4096 * (i + 1), allotted: 0, free: 4096 * (i + 1) });
      expect(host.cpus).to.deep.equal({ total: 16, allotted: 0, free: 16 });
      expect(host.guests).to.deep.equal({});
      expect(Date.parse(host.startedAt)).to.be.within(Date.now() - 120_000, Date.now());
      expect(host.seq).to.be.a('number').and.greaterThan(0);
      const lease = (await client.get(`${prefix}/hosts/host-${i}`).exec()).kvs[0].lease;
      expect(String(lease), `host-${i}'s key lives under a lease`).to.not.equal('0');
    }
    const health = (await agents[0].request('GET', '/health')).body;
    expect(health.plugins.fleet.healthy).to.equal(true);
    expect(health.plugins.fleet.details.state).to.equal('synced');
  });

  it('mirrors guests created, changed and deleted within a second, with a growing seq', async () => {
    const agent = agents[1];
    const guestsPrefix = `${prefix}/guests/host-1/`;
    const seen: Array<{ at: number; type: 'put' | 'delete'; key: string; value?: any }> = [];
    const watcher: Watcher = await client.watch().prefix(guestsPrefix).create();
    watcher.on('put', (kv) => seen.push({ at: Date.now(), type: 'put', key: kv.key.toString(), value: JSON.parse(kv.value.toString()) }));
    watcher.on('delete', (kv) => seen.push({ at: Date.now(), type: 'delete', key: kv.key.toString() }));
    try {
      const arrival = async (what: string, since: number, match: (e: (typeof seen)[number]) => boolean): Promise<number> => {
        const event = await waitFor(async () => seen.find((e) => e.at >= since && match(e)), 5000, what);
        return event.at - since;
      };

      let since = Date.now();
      const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 1024, cpu: 2, metadata: { name: 'web-1', secret: 'local only' } });
      expect(created.status).to.equal(200);
      const id = created.body.id;
      const key = guestsPrefix + id;
      const createdAfter = await arrival('the created guest in etcd', since, (e) => e.key === key && e.value.state === 'off');
      const afterCreate = seen.filter((e) => e.key === key).at(-1)!.value;
      expect(afterCreate).to.deep.include(expectedSummary(created.body, 'host-1'));
      expect(afterCreate.metadata, 'only allow-listed metadata leaves the host').to.deep.equal({ name: 'web-1' });

      since = Date.now();
      expect((await agent.request('POST', `/guests/${id}/start?wait=10`)).status).to.equal(200);
      const startedAfter = await arrival('the running state in etcd', since, (e) => e.key === key && e.value.state === 'running');

      since = Date.now();
      expect((await agent.request('PATCH', `/guests/${id}/metadata`, { name: 'web-2' })).status).to.equal(200);
      const patchedAfter = await arrival('the new name in etcd', since, (e) => e.key === key && e.value.metadata.name === 'web-2');

      since = Date.now();
      expect((await agent.request('DELETE', `/guests/${id}?wait=10`)).status).to.equal(200);
      const deletedAfter = await arrival('the deletion in etcd', since, (e) => e.key === key && e.type === 'delete');

      for (const [what, ms] of Object.entries({ createdAfter, startedAfter, patchedAfter, deletedAfter })) {
        expect(ms, `${what}: ms from the API's answer to the etcd event`).to.be.below(1000);
      }
      const seqs = seen.filter((e) => e.type === 'put').map((e) => e.value.seq);
      expect(seqs, 'each write carries a higher seq').to.deep.equal([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).to.equal(seqs.length);
      const host = (await readTree(client, prefix)).get(`${prefix}/hosts/host-1`);
      expect(host.seq).to.be.at.least(seqs.at(-1));
      expect(host.guests).to.deep.equal({});
      expect(host.memoryMiB.allotted).to.equal(0);
    } finally {
      await watcher.cancel();
    }
  });

  it('kill -9 of an agent leaves its host key until the lease expires (within the TTL)', async () => {
    const agent = agents[9];
    const key = `${prefix}/hosts/host-9`;
    expect(await client.get(key).string(), 'host-9 registered').to.not.equal(null);
    const killedAt = Date.now();
    await agent.kill9();
    expect(await client.get(key).string(), 'kill -9 does not delete the key itself').to.not.equal(null);
    await waitFor(async () => (await client.get(key).string()) === null, TTL_SECONDS * 1000 + 3000, 'the host key to expire');
    const gone = Date.now() - killedAt;
    // The last keepalive was at most TTL/3 before the kill; etcd expires leases on a ~500 ms tick.
    expect(gone, 'ms from kill -9 to the key expiring').to.be.below(TTL_SECONDS * 1000 + 1000);
  });

  it('SIGTERM deletes the host key at once', async () => {
    const agent = agents[8];
    const key = `${prefix}/hosts/host-8`;
    expect(await client.get(key).string()).to.not.equal(null);
    const watcher = await client.watch().key(key).create();
    const deleted = new Promise<number>((resolve) => watcher.on('delete', () => resolve(Date.now())));
    try {
      const signalledAt = Date.now();
      const code = await agent.stop();
      expect(code).to.equal(0);
      const deletedAt = await Promise.race([deleted, new Promise<number>((r) => setTimeout(() => r(Infinity), 5000))]);
      expect(deletedAt - signalledAt, 'ms from SIGTERM to the key deletion').to.be.below(2000);
      expect(await client.get(key).string()).to.equal(null);
    } finally {
      await watcher.cancel();
    }
  });

  it('etcd down for 30 s under load: every local API answers throughout; afterwards etcd matches every agent', async () => {
    const live = agents.slice(0, 8);
    const liveIds = hostIds.slice(0, 8);
    let loading = true;
    const latencies: number[] = [];
    const failures: string[] = [];
    // One bounded request loop per agent: creates, starts, metadata changes and deletes.
    const load = live.map(async (agent, n) => {
      const ids: string[] = [];
      for (let i = 0; loading && i < 2000; i++) {
        const started = Date.now();
        let res;
        if (i % 4 === 0 || ids.length === 0) {
          res = await agent.request('POST', '/guests?wait=10&start=false', { memory: 256 + i, cpu: 1 + (i % 3), metadata: { name: `g-${n}-${i}` } });
          if (res.status === 200) ids.push(res.body.id);
        } else if (i % 4 === 1) {
          res = await agent.request('POST', `/guests/${ids.at(-1)}/start?wait=10`);
        } else if (i % 4 === 2) {
          res = await agent.request('PATCH', `/guests/${ids[i % ids.length]}/metadata`, { name: `renamed-${i}` });
        } else {
          res = ids.length > 3 ? await agent.request('DELETE', `/guests/${ids.shift()}?wait=10`) : await agent.request('GET', '/guests');
        }
        latencies.push(Date.now() - started);
        if (res.status >= 300) failures.push(`agent ${n} op ${i}: ${res.status} ${res.text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    try {
      await new Promise((r) => setTimeout(r, 2000));
      await etcd.stop();
      const outageStarted = Date.now();
      await new Promise((r) => setTimeout(r, 8000));
      const during = (await live[0].request('GET', '/health')).body;
      expect(during.plugins.fleet.details.state, 'health shows the link is down').to.equal('disconnected');
      expect(during.plugins.fleet.details.queued, 'changes wait in the queue').to.be.greaterThan(0);
      const collapsed = (await live[2].request('GET', '/health')).body.plugins.fleet.details;
      expect(collapsed.resyncNeeded, 'a full queue collapses to "resync needed"').to.equal(true);
      expect(collapsed.queued).to.be.at.most(3);
      await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - outageStarted)));
      await etcd.restart();
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      loading = false;
      await Promise.all(load);
    }
    expect(failures, 'every request answered with success').to.deep.equal([]);
    expect(latencies.length).to.be.greaterThan(100);
    const slowest = Math.max(...latencies);
    expect(slowest, 'slowest local API answer (ms) while etcd was away').to.be.below(5000);

    for (const [i, agent] of live.entries()) {
      await waitConverged(client, prefix, agent, liveIds[i], 30_000);
      const fleet = (await agent.request('GET', '/health')).body.plugins.fleet;
      expect(fleet.details.state, `host-${i} link after etcd returned`).to.equal('synced');
      expect(fleet.details.resyncNeeded).to.equal(false);
    }
  });
});
