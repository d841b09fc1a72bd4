/**
 * Measurements for the libvirt backend's closing note (not a test: run it
 * with `node dist/test/libvirt/bench.js` after `npm run build`, as root).
 * Against a real libvirtd with the tiny guest under TCG, through the agent:
 *  - p50/p99 of each metrics endpoint with 10 running guests, sequential
 *    requests (the same method as test/qemu/bench.ts), with statsMaxAgeMs 0
 *    (every request reads libvirt afresh) and with the default 1000;
 *  - the same with 10 requests in flight at once (one per guest);
 *  - floors: one `domstats` round trip through a long-lived virsh shell, and
 *    one `virsh domstats` process per call.
 * Removes every domain, volume, pool and daemon it made (see world.ts).
 */
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { VirshShell } from '../../plugins/libvirt/virsh-shell.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { waitForConsole, MemoryLogger } from '../support/backend-testing.js';
import { removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { LibvirtWorld, SYSTEM_URI } from './world.js';
import { summarize as summary } from '../support/latency.js';

const GUESTS = Number(process.env.HK_BENCH_GUESTS ?? 10);
const REQUESTS = Number(process.env.HK_BENCH_REQUESTS ?? 1000);

async function sequential(a: RunningAgent, ids: string[]): Promise<Record<string, ReturnType<typeof summary>>> {
  const out: Record<string, ReturnType<typeof summary>> = {};
  for (const type of ['cpu', 'disk', 'nic']) {
    const samples: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const t0 = performance.now();
      const res = await fetch(`${a.url}/guests/${ids[i % ids.length]}/metrics/${type}`);
      await res.arrayBuffer();
      samples.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`metrics ${type}: ${res.status}`);
    }
    out[`GET /guests/{id}/metrics/${type}`] = summary(samples);
  }
  return out;
}

async function concurrent(a: RunningAgent, ids: string[]): Promise<ReturnType<typeof summary>> {
  const samples: number[] = [];
  for (let round = 0; round < REQUESTS / ids.length; round++) {
    await Promise.all(
      ids.map(async (id) => {
        const t0 = performance.now();
        const res = await fetch(`${a.url}/guests/${id}/metrics/disk`);
        await res.arrayBuffer();
        samples.push(performance.now() - t0);
        if (res.status !== 200) throw new Error(`metrics disk: ${res.status}`);
      }),
    );
  }
  return summary(samples);
}

async function main() {
  const world = await LibvirtWorld.create();
  let agent: RunningAgent | undefined;
  const dataDirs: string[] = [];
  try {
    const configFor = (statsMaxAgeMs: number) => {
      const config = world.config({ statsMaxAgeMs });
      return { ...config, logLevel: 'warn', accessLog: false };
    };
    agent = await startAgent({ config: configFor(0), startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
    dataDirs.push(agent.dataDir);
    const a = agent;
    const ids: string[] = [];
    for (let i = 0; i < GUESTS; i++) {
      const res = await a.request('POST', '/guests?wait=30&start=false', { memory: 128, cpu: 1, disks: [{ size: 16 }], nics: [{ network: world.bridge }], metadata: world.tinyBoot });
      if (res.status !== 200) throw new Error(`create: ${res.text}`);
      ids.push(res.body.id);
    }
    for (const id of ids) {
      const res = await a.request('POST', `/guests/${id}/start?wait=60`);
      if (res.status !== 200) throw new Error(`start: ${res.text}`);
    }
    for (const id of ids) await waitForConsole(path.join(a.dataDir, 'plugins', 'libvirt', id, 'console.log'), INIT_REACHED, 180000);

    const fresh = await sequential(a, ids);
    const freshConcurrent = await concurrent(a, ids);

    // Same guests, agent restarted with the default reuse of 1 s.
    await a.stop();
    agent = await startAgent({ config: configFor(1000), dataDir: a.dataDir, startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
    const cached = await sequential(agent, ids);
    const cachedConcurrent = await concurrent(agent, ids);

    // Floors.
    const shell = new VirshShell('virsh', SYSTEM_URI, new MemoryLogger(), 30000);
    const shellSamples: number[] = [];
    const shellOneSamples: number[] = [];
    for (let i = 0; i < 200; i++) {
      let t0 = performance.now();
      await shell.run(['domstats', '--list-active', '--state', '--cpu-total', '--vcpu', '--block', '--interface']);
      shellSamples.push(performance.now() - t0);
      t0 = performance.now();
      await shell.run(['domstats', '--state', '--block', '--nowait', world.prefix + ids[i % ids.length]]);
      shellOneSamples.push(performance.now() - t0);
    }
    await shell.close();
    const spawnSamples: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      execFileSync('virsh', ['-q', '-c', SYSTEM_URI, 'domstats', '--list-active', '--state', '--cpu-total', '--vcpu', '--block', '--interface']);
      spawnSamples.push(performance.now() - t0);
    }

    const result = {
      host: { cpus: execFileSync('nproc', { encoding: 'utf8' }).trim(), libvirt: execFileSync('virsh', ['-c', SYSTEM_URI, 'version', '--daemon'], { encoding: 'utf8' }).trim().split('\n').join('; ') },
      domainType: 'qemu (TCG)',
      guestsRunning: ids.length,
      'sequential, statsMaxAgeMs 0 (default: each request reads its own domain)': fresh,
      'disk, 10 in flight (one per guest), statsMaxAgeMs 0 (batched)': freshConcurrent,
      'sequential, statsMaxAgeMs 1000 (sweep all guests, reuse 1 s)': cached,
      'disk, 10 in flight (one per guest), statsMaxAgeMs 1000': cachedConcurrent,
      'floor: domstats --block of one guest through a long-lived virsh shell': summary(shellOneSamples),
      'floor: domstats of all groups of all 10 guests through the shell': summary(shellSamples),
      'floor: one virsh process per domstats call': summary(spawnSamples),
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await agent?.stop();
    await world.dispose();
    for (const dir of dataDirs) await Promise.all([removeDir(dir), rm(`${dir}.config.json`, { force: true })]);
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
