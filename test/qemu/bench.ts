/**
 * Measurements for the QEMU backend's closing note (not a test: run it with
 * `node dist/test/qemu/bench.js` after `npm run build`). Under TCG, through
 * the real agent:
 *  - time from POST /guests/{id}/start to the tiny guest's init, against
 *    launching the same QEMU command line by hand;
 *  - p50/p99 of each metrics endpoint with 10 running guests, against a bare
 *    QMP round trip on the same host.
 * Kills every QEMU it started, by pid, and removes its temp dirs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { QmpClient } from '../../plugins/qemu/qmp-client.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { waitForConsole } from '../support/backend-testing.js';
import { killTestQemus } from './kill-test-qemus.js';
import { QemuWorld } from './world.js';
import { summarize as summary } from '../support/latency.js';

const GUESTS = Number(process.env.HK_BENCH_GUESTS ?? 10);
const REQUESTS = Number(process.env.HK_BENCH_REQUESTS ?? 1000);
const ROUNDS = Number(process.env.HK_BENCH_ROUNDS ?? 5);

async function main() {
  const world = await QemuWorld.create();
  let agent: RunningAgent | undefined;
  try {
    const config = shippedConfig('qemu.json');
    config.plugins.find((p: { module: string }) => p.module === 'qemu').options = { accel: 'tcg', imagesDir: world.imagesDir };
    agent = await startAgent({ config: { ...config, logLevel: 'warn' }, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const a = agent;
    const runDir = (id: string) => path.join(a.dataDir, 'plugins', 'qemu', id);

    const ids: string[] = [];
    for (let i = 0; i < GUESTS; i++) {
      const res = await a.request('POST', '/guests?wait=30&start=false', { memory: 128, cpu: 1, disks: [{ size: 16 }], nics: [{}], metadata: world.tinyBoot });
      if (res.status !== 200) throw new Error(`create: ${res.text}`);
      ids.push(res.body.id);
    }
    // Boot time, alone on the host: through the agent (POST start) against the
    // same QEMU command line launched by hand, interleaved so both see the same load.
    const argvOf = (id: string) => readFileSync(`/proc/${readFileSync(path.join(runDir(id), 'qemu.pid'), 'utf8').trim()}/cmdline`, 'utf8').split('\0').slice(0, -1);
    const handDir = path.join(world.root, 'by-hand');
    execFileSync('mkdir', ['-p', handDir]);
    const bootMs: number[] = [];
    const handBootMs: number[] = [];
    let argv: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const id = ids[0];
      // The previous boot's console would satisfy the wait before the start job rotates it.
      execFileSync('rm', ['-f', path.join(runDir(id), 'console.log')]);
      const t0 = performance.now();
      const res = await a.request('POST', `/guests/${id}/start`);
      if (res.status !== 202) throw new Error(`start: ${res.text}`);
      await waitForConsole(path.join(runDir(id), 'console.log'), INIT_REACHED, 60000);
      bootMs.push(performance.now() - t0);
      argv = argvOf(id);
      const off = await a.request('POST', `/guests/${id}/poweroff?wait=30`);
      if (off.status !== 200) throw new Error(`poweroff: ${off.text}`);

      const handArgs = argv.slice(1).map((arg) => arg.replaceAll(runDir(id), handDir));
      execFileSync('rm', ['-f', path.join(handDir, 'vda.qcow2'), path.join(handDir, 'console.log')]);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(handDir, 'vda.qcow2'), '16M']);
      const t1 = performance.now();
      const r = spawnSync(argv[0], handArgs, { cwd: handDir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`by hand: ${r.stderr}`);
      await waitForConsole(path.join(handDir, 'console.log'), INIT_REACHED, 60000);
      handBootMs.push(performance.now() - t1);
      process.kill(Number(readFileSync(path.join(handDir, 'qemu.pid'), 'utf8')), 'SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
    }
    // Then all guests up for the metrics.
    for (const id of ids) {
      const res = await a.request('POST', `/guests/${id}/start`);
      if (res.status !== 202) throw new Error(`start: ${res.text}`);
    }
    for (const id of ids) await waitForConsole(path.join(runDir(id), 'console.log'), INIT_REACHED, 120000);

    // Metrics with all guests running.
    const endpoints: Record<string, ReturnType<typeof summary>> = {};
    for (const type of ['cpu', 'disk', 'nic']) {
      const samples: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const id = ids[i % ids.length];
        const t0 = performance.now();
        const res = await fetch(`${a.url}/guests/${id}/metrics/${type}`);
        await res.arrayBuffer();
        samples.push(performance.now() - t0);
        if (res.status !== 200) throw new Error(`metrics ${type}: ${res.status}`);
      }
      endpoints[`GET /guests/{id}/metrics/${type}`] = summary(samples);
    }
    // A bare QMP round trip, the floor under cpu and disk metrics.
    const qmpSamples: number[] = [];
    {
      // The agent holds each guest's only QMP connection, so measure on a fresh paused QEMU.
      const pid = spawnSync(argv[0], ['-machine', 'q35', '-accel', 'tcg', '-m', '64', '-nodefaults', '-display', 'none', '-S', '-daemonize',
        '-pidfile', path.join(handDir, 'direct.pid'), '-qmp', `unix:${path.join(handDir, 'direct.sock')},server=on,wait=off`]);
      if (pid.status !== 0) throw new Error('direct QEMU failed');
      const direct = await QmpClient.connect(path.join(handDir, 'direct.sock'));
      for (let i = 0; i < REQUESTS; i++) {
        const t0 = performance.now();
        await direct.execute('query-blockstats');
        qmpSamples.push(performance.now() - t0);
      }
      direct.close();
      process.kill(Number(readFileSync(path.join(handDir, 'direct.pid'), 'utf8')), 'SIGKILL');
    }
    const result = {
      host: { cpus: spawnSync('nproc', { encoding: 'utf8' }).stdout.trim(), qemu: execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] },
      accel: 'tcg',
      guests: GUESTS,
      'POST start -> init, through the agent (alone on the host)': summary(bootMs),
      'same QEMU command line by hand -> init (alone on the host)': summary(handBootMs),
      'guests running during metrics': ids.length,
      metrics: endpoints,
      'bare QMP query-blockstats round trip': summary(qmpSamples),
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    const dataDir = agent?.dataDir;
    await agent?.stop();
    if (dataDir) {
      await killTestQemus(path.join(dataDir, 'plugins', 'qemu'));
      await removeDir(dataDir);
    }
    await killTestQemus(world.root);
    await world.dispose();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
