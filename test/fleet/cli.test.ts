/**
 * `hyperkern fleet hosts|guests|place` against a real etcd that three real
 * agents registered in: it reads etcd directly, tables for people, --json
 * for scripts, and `place` ranks the hosts that fit by free memory.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { distRoot, removeDir, waitFor, type RunningAgent } from '../support/agent.js';
import { startEtcd, type EtcdServer } from '../support/etcd-server.js';
import { etcdClient, readTree, startFleetAgent, testPrefix } from './world.js';

const exec = promisify(execFile);
const CLI = path.join(distRoot, 'cli/hyperkern.js');

describe('CLI: hyperkern fleet', function () {
  this.timeout(120_000);
  let etcd: EtcdServer;
  const prefix = testPrefix();
  const agents: RunningAgent[] = [];

  async function fleet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [CLI, 'fleet', '--endpoints', etcd.endpoint, '--prefix', prefix, ...args], { timeout: 30_000, env: { ...process.env, XDG_CONFIG_HOME: '/nonexistent' } });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  before(async () => {
    etcd = await startEtcd();
    // host-a: 8 GiB, host-b: 16 GiB, host-c: 4 GiB; 16 CPUs each.
    const memory = { 'host-a': 8192, 'host-b': 16384, 'host-c': 4096 };
    for (const [hostId, memoryMiB] of Object.entries(memory)) agents.push(await startFleetAgent({ endpoint: etcd.endpoint, prefix, hostId, memoryMiB }));
    // host-b gets a 12 GiB guest, leaving it 4 GiB: host-a is then the roomiest.
    const res = await agents[1].request('POST', '/guests?wait=10&start=false', { memory: 12288, cpu: 4, metadata: { name: 'big' } });
    expect(res.status, res.text).to.equal(200);
    const client = etcdClient(etcd.endpoint);
    try {
      await waitFor(async () => {
        const tree = await readTree(client, prefix);
        return ['host-a', 'host-b', 'host-c'].every((h) => tree.has(`${prefix}/hosts/${h}`)) && tree.get(`${prefix}/hosts/host-b`).memoryMiB.free === 4096;
      }, 20_000, 'three hosts registered, host-b with its guest');
    } finally {
      client.close();
    }
  });

  after(async () => {
    for (const agent of agents) await agent.kill9();
    for (const agent of agents) await removeDir(agent.dataDir);
    await etcd?.dispose();
  });

  it('hosts: one row per live host with free/total capacity; --json gives the host records', async () => {
    const table = await fleet('hosts');
    expect(table.code, table.stderr).to.equal(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^HOST\s+URL\s+HEALTH\s+CPUS FREE\/TOTAL\s+MEMORY FREE\/TOTAL\s+GUESTS/);
    expect(lines).to.have.length(4);
    expect(lines[2]).to.include('host-b').and.include(agents[1].url).and.include('12/16').and.include('4096/16384 MiB').and.include('off:1');
    const asJson = await fleet('hosts', '--json');
    const hosts = JSON.parse(asJson.stdout);
    expect(hosts.map((h: any) => h.hostId)).to.deep.equal(['host-a', 'host-b', 'host-c']);
    expect(hosts[1].guests).to.deep.equal({ off: 1 });
  });

  it('guests [--host H]: every guest with its host, state and allow-listed metadata', async () => {
    await agents[2].request('POST', '/guests?wait=10&start=false', { memory: 512, cpu: 1, metadata: { name: 'small', hidden: 'x' } });
    const all = await waitFor(async () => {
      const r = await fleet('guests', '--json');
      const guests = JSON.parse(r.stdout);
      return guests.length === 2 ? guests : undefined;
    }, 10_000, 'two guests in the fleet');
    expect(all.map((g: any) => [g.hostId, g.metadata.name])).to.deep.equal([['host-b', 'big'], ['host-c', 'small']]);
    expect(all[1].metadata).to.deep.equal({ name: 'small' });
    const onlyB = await fleet('guests', '--host', 'host-b');
    expect(onlyB.code).to.equal(0);
    const rows = onlyB.stdout.trim().split('\n');
    expect(rows).to.have.length(2);
    expect(rows[1]).to.match(/host-b\s+yes\s+off\s+4\s+12288 MiB\s+name=big/);
  });

  it('place --cpu N --memory M: the hosts that fit, most free memory first; none fits: exit 1', async () => {
    const fit = await fleet('place', '--cpu', '2', '--memory', '2048', '--json');
    expect(fit.code, fit.stderr).to.equal(0);
    // Free memory now: host-a 8192, host-b 4096, host-c 3584.
    expect(JSON.parse(fit.stdout).map((h: any) => h.hostId)).to.deep.equal(['host-a', 'host-b', 'host-c']);
    const big = await fleet('place', '--cpu', '1', '--memory', '6000');
    expect(big.code).to.equal(0);
    expect(big.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal(['host-a']);
    const cpus = await fleet('place', '--cpu', '13', '--memory', '128', '--json');
    expect(JSON.parse(cpus.stdout).map((h: any) => h.hostId), 'host-b has only 12 CPUs free').to.deep.equal(['host-a', 'host-c']);
    const none = await fleet('place', '--cpu', '1', '--memory', '100000');
    expect(none.code).to.equal(1);
    expect(none.stderr).to.match(/no live, healthy host has 1 vCPUs and 100000 MiB free \(of 3 hosts\)/);
    const bad = await fleet('place', '--cpu', 'many', '--memory', '1');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('--cpu must be a positive number');
  });

  it('a host whose agent died drops out of hosts and place; its guests stay, marked HOST UP no', async () => {
    await agents[1].stop();
    const hosts = JSON.parse((await fleet('hosts', '--json')).stdout);
    expect(hosts.map((h: any) => h.hostId)).to.deep.equal(['host-a', 'host-c']);
    const guests = await fleet('guests', '--host', 'host-b');
    expect(guests.stdout.trim().split('\n')[1]).to.match(/host-b\s+no\s+off/);
  });

  it('etcd unreachable: one line naming the problem, exit 1, no stack', async () => {
    const r = await promisify(execFile)(process.execPath, [CLI, 'fleet', '--endpoints', 'http://127.0.0.1:1', 'hosts'], { timeout: 30_000 }).catch((e) => e);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^hyperkern: etcd did not answer: /);
    expect(r.stderr).to.not.match(/\bat .+:\d+:\d+/);
  });
});
