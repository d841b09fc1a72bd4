/**
 * A move named by fleet host id (`{"host": "<hostId>"}`) goes where the
 * host's live record in a real etcd says, with the token the fleet plugin's
 * options give for that host (`peerTokens`, else `peerToken`): the kernel's
 * lookup through the plugin that knows the fleet. A host that is down (its
 * key gone with its lease) is not found; etcd down is a clear 502, bounded
 * by callTimeoutMs; an agent without a fleet has no lookup at all.
 */
import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { HyperkernError } from '../../core/errors.js';
import { removeDir, waitFor } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';
import { startEtcd, type EtcdServer } from '../support/etcd-server.js';
import { startInProcessAgent, type InProcessAgent } from '../support/in-process-agent.js';
import { etcdClient, fleetAgentConfig, testPrefix } from './world.js';

const SHARED = 'fleet-shared-peer-token-0123456789';
const FOR_B = 'host-b-own-peer-token-0123456789';

describe('fleet: hosts looked up by id for a move', function () {
  this.timeout(120_000);
  let etcd: EtcdServer;
  let client: Etcd3;
  const prefix = testPrefix();
  const agents: InProcessAgent[] = [];

  const start = (hostId: string, fleet: Record<string, unknown> = {}) =>
    startInProcessAgent({ config: fleetAgentConfig({ endpoint: etcd.endpoint, prefix, hostId, leaseTtlSeconds: 4, fleet }) }).then((agent) => (agents.push(agent), agent));

  before(async () => {
    etcd = await startEtcd();
    client = etcdClient(etcd.endpoint);
  });
  after(async () => {
    for (const agent of agents) {
      await agent.stop();
      await removeDir(agent.dataDir);
    }
    client?.close();
    await etcd?.dispose();
  });

  it('finds each host at its advertised URL with the token the options give for it, and no host that is down', async () => {
    const a = await start('host-a', { peerToken: SHARED, peerTokens: { 'host-b': FOR_B } });
    const b = await start('host-b');
    const c = await start('host-c');
    const lookup = a.kernel.locateHost!;
    expect(lookup, 'the fleet plugin offers the lookup').to.be.a('function');
    const found = await waitFor(async () => (await lookup('host-c')) && (await lookup('host-b')), 20_000, 'hosts b and c registered');
    expect(found).to.deep.equal({ hostId: 'host-b', url: b.url, token: FOR_B });
    expect(await lookup('host-c')).to.deep.equal({ hostId: 'host-c', url: c.url, token: SHARED });
    expect(await lookup('host-zz'), 'a host the fleet does not know').to.equal(undefined);
    // A host whose agent stopped: its key went with its lease.
    await c.stop();
    await waitFor(async () => (await client.get(`${prefix}/hosts/host-c`).string()) === null, 10_000, 'host-c to leave');
    expect(await lookup('host-c')).to.equal(undefined);
    // Without a token for it in the options: no token (a target without auth).
    expect(await b.kernel.locateHost!('host-a')).to.deep.equal({ hostId: 'host-a', url: a.url });
  });

  it('answers 502 naming the host when etcd is down, within the call deadline', async () => {
    const d = await start('host-d', { peerToken: SHARED });
    await waitFor(async () => await d.kernel.locateHost!('host-d'), 20_000, 'host-d registered');
    await etcd.stop();
    try {
      const started = Date.now();
      const error = await d.kernel.locateHost!('host-a').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(HyperkernError);
      expect(error).to.include({ status: 502, code: 'HK_ERR_STAGE_FAILED' });
      expect((error as Error).message).to.match(/plugin "fleet" could not look up host "host-a": cannot read host "host-a" from etcd/);
      expect(Date.now() - started, 'bounded by callTimeoutMs (2 s) and a reconnect').to.be.below(10_000);
    } finally {
      await etcd.restart();
    }
  });

  it('has no lookup without a fleet plugin', async () => {
    const lone = await startInProcessAgent({ config: simulatorConfig({ accessLog: false }) });
    agents.push(lone);
    expect(lone.kernel.locateHost).to.equal(undefined);
  });
});
