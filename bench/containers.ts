/**
 * Container lifecycle benchmark (issue 23): each step of a container guest
 * through the agent (HTTP request with ?wait until its job completes) next
 * to the bare runtime doing the same step in the same run (lxc-create,
 * lxc-start -d + lxc-wait, lxc-freeze, lxc-unfreeze, lxc-stop -k,
 * lxc-destroy), on the same busybox image's read-only base and the same
 * LXC config the backend writes (unprivileged, overlay layer); then 100
 * containers started at once, both ways. Medians of ROUNDS rounds.
 *
 *   npm run build && node dist/bench/containers.js   (as root, alone: bash /work/tools/heavy.sh …)
 *
 * Writes its section of bench/RESULTS.md (between the containers bench
 * markers) after a whole run. ROUNDS (steps), MANY (containers started at
 * once) and MANY_ROUNDS (rounds of that, agent and bare taking turns: the
 * median is recorded) size it; ONLY=steps or ONLY=many runs one part and
 * only prints it; CONCURRENCY sets the agent's jobs.concurrency (by
 * default the shipped config's).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { machineLoad } from './support/machine.js';
import { withMarkedSection } from './support/results-file.js';
import { makeTempDir, removeDir, repoRoot, startAgent, type RunningAgent } from '../test/support/agent.js';
import { shippedConfig } from '../test/support/configs.js';
import { removeContainers } from '../test/support/lxc-containers.js';
import { buildBusyboxImage, unmountUnder } from '../test/support/oci-registry.js';
import { lxcConfig } from '../plugins/lxc/lxc-config.js';
import { CONTAINER_NAME_PREFIX, ContainerPaths } from '../plugins/lxc/container-paths.js';
import { lxcOptionsSchema } from '../plugins/lxc/options.js';
import { readImageBundle } from '../plugins/lxc/image-bundle.js';

const run = promisify(execFile);
const BEGIN = '<!-- containers bench: begin (written by node dist/bench/containers.js) -->';
const END = '<!-- containers bench: end -->';
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const MANY = Number(process.env.MANY ?? 100);
const MANY_ROUNDS = Number(process.env.MANY_ROUNDS ?? 3);
const ONLY = process.env.ONLY as 'steps' | 'many' | undefined;
const CONCURRENCY = process.env.CONCURRENCY ? Number(process.env.CONCURRENCY) : undefined;
const STEPS = ['create', 'start', 'freeze', 'unfreeze', 'stop', 'delete'] as const;
type Step = (typeof STEPS)[number];
const TARGET: Record<Step, number | undefined> = { create: 100, start: 150, freeze: 10, unfreeze: undefined, stop: 100, delete: 50 };
const LXD: Record<Step, number> = { create: 78, start: 291, freeze: 11, unfreeze: 11, stop: 726, delete: 22 };

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (v: number) => (v < 10 ? v.toFixed(1) : v.toFixed(0));

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** One action through the agent, answered once its job completed (?wait). */
async function agentStep(agent: RunningAgent, method: string, url: string, body?: unknown): Promise<{ id?: string }> {
  const res = await fetch(`${agent.url}${url}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== 200 || res.headers.get('x-guest-job-status') !== 'Complete') throw new Error(`${method} ${url}: HTTP ${res.status} ${res.headers.get('x-guest-job-status')}: ${text}`);
  return JSON.parse(text) as { id?: string };
}

async function main(): Promise<void> {
  const work = await makeTempDir('hk-ctbench-');
  await chmod(work, 0o711);
  const dataDir = path.join(work, 'data');
  await mkdir(dataDir, { mode: 0o711 });
  const bases = path.join(work, 'bases');
  const layouts = path.join(work, 'layouts');
  const agentLxcPath = path.join(dataDir, 'plugins', 'lxc', 'containers');
  // The bare containers' LXC path: what ContainerPaths makes of a data dir of their own.
  const bareRoot = path.join(work, 'bare');
  const bareLxcPath = new ContainerPaths(bareRoot, 'x').lxcPath;
  let agent: RunningAgent | undefined;
  try {
    const image = await buildBusyboxImage(work, layouts, 'bench', '1.0', { entrypoint: ['/bin/sleep'], cmd: ['3600'] });
    const config = shippedConfig('agent.json');
    if (CONCURRENCY !== undefined) config.jobs = { ...config.jobs, concurrency: CONCURRENCY };
    config.plugins = config.plugins
      .filter((p: { module: string }) => p.module !== 'qemu')
      .map((p: { module: string; options?: Record<string, unknown> }) =>
        p.module === 'images'
          ? { ...p, options: { ...p.options, imagesDir: path.join(work, 'images'), containerImagesDir: bases, fileSourceDirs: [layouts], allowedSchemes: ['http', 'https', 'file'] } }
          : p.module === 'lxc'
            ? { ...p, options: { ...p.options, containerImagesDir: bases } }
            : p,
      );
    // info: the test helper waits for the "listening" line.
    agent = await startAgent({ config, dataDir, env: { HYPERKERN_LOG_LEVEL: 'info' } });
    await agentStep(agent, 'POST', '/images?wait=120', { id: 'bench', type: 'container', source: `oci:${image.layout}:${image.tag}` });

    // The bare runtime: the same base and the config the backend writes, in an LXC path of its own.
    const options = lxcOptionsSchema.parse({ containerImagesDir: bases });
    const bundle = await readImageBundle(bases, 'bench');
    await mkdir(bareLxcPath, { recursive: true, mode: 0o711 });
    await chmod(bareRoot, 0o711);
    /** The config the backend would write for this container, without its rootfs line (lxc-create -t none makes none; it is added after, as LXC's templates do). */
    const bareConfig = async (name: string): Promise<string> => {
      const guestId = name.slice(CONTAINER_NAME_PREFIX.length);
      const paths = new ContainerPaths(bareRoot, guestId);
      const guest = { id: guestId, type: 'container', image: 'bench', nics: [], disks: [], state: 'off' as const, memory: 0, cpu: 0, vnc: 0, metadata: {} };
      const file = path.join(work, `${name}.conf`);
      await writeFile(file, lxcConfig({ guest, paths, bundle, options, extraLines: ['lxc.net.0.type = empty'] }).replace(/^lxc\.rootfs\.path.*$/m, ''));
      return file;
    };
    const bare = {
      async create(name: string) {
        const file = await bareConfig(name);
        return timed(async () => {
          await run('lxc-create', ['-n', name, '-P', bareLxcPath, '-t', 'none', '-f', file]);
          const dir = path.join(bareLxcPath, name);
          await mkdir(path.join(dir, 'upper'));
          await mkdir(path.join(dir, 'work'));
          await run('chown', ['100000:100000', path.join(dir, 'upper'), path.join(dir, 'work')]);
          await writeFile(path.join(dir, 'config'), `${await readFile(path.join(dir, 'config'), 'utf8')}lxc.rootfs.path = overlay:${bundle.rootfs}:${path.join(dir, 'upper')}\n`);
        });
      },
      start: (name: string) => timed(async () => {
        await run('lxc-start', ['-n', name, '-P', bareLxcPath, '-d', '--', ...bundle.process.args]);
        await run('lxc-wait', ['-n', name, '-P', bareLxcPath, '-s', 'RUNNING', '-t', '30']);
      }),
      freeze: (name: string) => timed(() => run('lxc-freeze', ['-n', name, '-P', bareLxcPath])),
      unfreeze: (name: string) => timed(() => run('lxc-unfreeze', ['-n', name, '-P', bareLxcPath])),
      stop: (name: string) => timed(() => run('lxc-stop', ['-k', '-n', name, '-P', bareLxcPath])),
      delete: (name: string) => timed(() => run('lxc-destroy', ['-n', name, '-P', bareLxcPath])),
    };

    const agentTimes: Record<Step, number[]> = { create: [], start: [], freeze: [], unfreeze: [], stop: [], delete: [] };
    const bareTimes: Record<Step, number[]> = { create: [], start: [], freeze: [], unfreeze: [], stop: [], delete: [] };
    for (let round = 0; ONLY !== 'many' && round < ROUNDS; round++) {
      // Through the agent: create (left off), start, suspend, resume, poweroff, delete.
      let id = '';
      agentTimes.create.push(await timed(async () => {
        id = (await agentStep(agent!, 'POST', '/guests?start=false&wait=30', { type: 'container', image: 'bench' })).id!;
      }));
      agentTimes.start.push(await timed(() => agentStep(agent!, 'POST', `/guests/${id}/start?wait=30`)));
      agentTimes.freeze.push(await timed(() => agentStep(agent!, 'POST', `/guests/${id}/suspend?wait=30`)));
      agentTimes.unfreeze.push(await timed(() => agentStep(agent!, 'POST', `/guests/${id}/resume?wait=30`)));
      agentTimes.stop.push(await timed(() => agentStep(agent!, 'POST', `/guests/${id}/poweroff?wait=30`)));
      agentTimes.delete.push(await timed(() => agentStep(agent!, 'DELETE', `/guests/${id}?wait=30`)));
      // Bare, the same steps.
      const name = `hk-bench-${process.pid}-${round}`;
      for (const step of STEPS) bareTimes[step].push(await bare[step](name));
    }

    // 100 at once, agent and bare taking turns: created left off first, then every start sent together; bare: 100 lxc-start -d together.
    const agentMany: number[] = [];
    const bareMany: number[] = [];
    for (let round = 0; ONLY !== 'steps' && round < MANY_ROUNDS; round++) {
      const ids = await Promise.all(Array.from({ length: MANY }, async () => (await agentStep(agent!, 'POST', '/guests?start=false&wait=120', { type: 'container', image: 'bench' })).id!));
      agentMany.push(await timed(() => Promise.all(ids.map((id) => agentStep(agent!, 'POST', `/guests/${id}/start?wait=300`)))));
      await Promise.all(ids.map((id) => agentStep(agent!, 'DELETE', `/guests/${id}?wait=300`)));
      const names = Array.from({ length: MANY }, (_, i) => `hk-bench-${process.pid}-many-${round}-${i}`);
      for (const name of names) await bare.create(name);
      bareMany.push(await timed(() => Promise.all(names.map((name) => run('lxc-start', ['-n', name, '-P', bareLxcPath, '-d', '--', ...bundle.process.args])))));
      await Promise.all(names.map((name) => run('lxc-stop', ['-k', '-n', name, '-P', bareLxcPath]).catch(() => undefined)));
      for (const name of names) await run('lxc-destroy', ['-n', name, '-P', bareLxcPath]).catch(() => undefined);
      console.log(`${MANY} at once, round ${round + 1}: agent ${fmt(agentMany.at(-1)!)} ms, bare ${fmt(bareMany.at(-1)!)} ms`);
    }

    if (ONLY !== 'many') for (const step of STEPS) console.log(`${step}: agent ${agentTimes[step].map(fmt).join(' ')} | bare ${bareTimes[step].map(fmt).join(' ')}`);
    if (ONLY) return;
    const rows = STEPS.map((step) => {
      const a = median(agentTimes[step]);
      const b = median(bareTimes[step]);
      const target = TARGET[step];
      const ok = (target === undefined || a <= target) && a <= 1.3 * b ? 'yes' : 'no';
      return `| ${step} | ${fmt(a)} ms | ${fmt(b)} ms | ${(a / b).toFixed(2)}x | ${LXD[step]} ms | ${target === undefined ? '—' : `≤ ${target} ms`} | ${ok} |`;
    });
    const lxcVersion = (await run('lxc-start', ['--version'])).stdout.trim();
    const section = `## Container lifecycle, through the agent and bare (bench/containers.ts)

- date: ${new Date().toISOString()}; ${os.type()} ${os.release()}; LXC ${lxcVersion}; ${machineLoad()}
- medians of ${ROUNDS} rounds; busybox-static image (entrypoint /bin/sleep 3600) fetched by POST /images, unpacked once; every container unprivileged (id map 0 -> 100000), its root an overlay over the read-only base, no NIC
- through the agent: the HTTP request with \`?wait\` until its job is Complete (create: \`POST /guests?start=false\`, start, suspend, resume, poweroff, \`DELETE\`); bare: the lxc-* commands on the same base with the config the backend writes (create: lxc-create -t none + its upper dir; start: lxc-start -d + lxc-wait RUNNING; stop: lxc-stop -k; delete: lxc-destroy)

| step | agent | bare LXC | agent / bare | LXD 5.0 (issue 23) | target (agent) | met (target and ≤ 1.3x bare) |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

${MANY} containers started at once (created left off first; median of ${MANY_ROUNDS} rounds, agent and bare taking turns): through the agent (${MANY} \`POST /guests/{id}/start?wait\` sent together, jobs.concurrency ${config.jobs.concurrency}) ${fmt(median(agentMany))} ms until every job completed; bare (${MANY} \`lxc-start -d\` together) ${fmt(median(bareMany))} ms (${(median(agentMany) / median(bareMany)).toFixed(2)}x; target ≤ 1.3x: ${median(agentMany) <= 1.3 * median(bareMany) ? 'met' : 'not met'}).`;
    console.log(section);
    const file = path.join(repoRoot, 'bench', 'RESULTS.md');
    await writeFile(file, withMarkedSection(await readFile(file, 'utf8'), BEGIN, END, section));
  } finally {
    await agent?.stop().catch(() => undefined);
    await removeContainers(agentLxcPath);
    await removeContainers(bareLxcPath);
    await unmountUnder(work);
    await removeDir(work);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
