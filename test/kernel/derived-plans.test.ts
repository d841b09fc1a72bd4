/**
 * Plans derived from the plugins. Every shipped config is loaded as
 * `--check` loads it (plugins constructed, not started: no hypervisor) and
 * must plan every action its plugins serve; the default config plans every
 * route family. Composition rules (checks compose, one plugin's work,
 * `replaces`, `after`, a conflict is a boot error naming both plugins, an
 * `actions` entry overrides one plan) run through buildActionPlans with
 * real stage handles.
 */
import 'reflect-metadata';
import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { container } from 'tsyringe';
import { loadConfig, overridesFrom, type AgentConfig } from '../../core/config/config.js';
import { Tokens, rolesOf, type AgentInfo, type GuestDirectory, type StageKind } from '../../core/contract/plugin-api.js';
import { preparePlugins } from '../../core/kernel.js';
import { buildActionPlans, type ActionPlans } from '../../core/jobs/action-plan.js';
import { IMAGE_JOB_ACTIONS, IMAGE_QUERY_ACTIONS, IMAGE_UPLOAD_ACTIONS, LIFECYCLE_ACTIONS, METRICS_ACTIONS, SNAPSHOT_ACTIONS, VNC_ACTION } from '../../core/jobs/actions.js';
import { derivableActions, type PluginStages } from '../../core/jobs/derived-plans.js';
import { builtinConfigDialects, type LoadedPlugin } from '../../core/plugins/plugin-loader.js';
import type { StageHandle } from '../../core/plugins/stage-handle.js';
import { repoRoot } from '../support/agent.js';

const silent = pino({ level: 'silent' });
const noGuests: GuestDirectory = { list: async () => [], get: async () => undefined, observe: async () => {} };
const notListening: AgentInfo = { version: 'test', startedAt: 0, url: () => undefined, status: async () => 'ok', onGuestChange: () => () => {} };

/** A config file's plugins and plans, as --check builds them: constructed in a scratch data dir, never started. */
async function check(file: string): Promise<{ plugins: LoadedPlugin[]; plans: ActionPlans }> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'hk-derived-'));
  try {
    const loaded = await loadConfig(file, overridesFrom({ dataDir: scratch }, {}), builtinConfigDialects);
    const scope = container.createChildContainer();
    scope.register(Tokens.Guests, { useValue: noGuests });
    scope.register(Tokens.Agent, { useValue: notListening });
    const prepared = await preparePlugins(loaded, silent, scope, scratch);
    await Promise.allSettled(prepared.plugins.map((p) => p.instance.stop?.()));
    return prepared;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The actions a plugin's stages do the work of: named after the action, or declared in its manifest's serves. */
function servedBy(plugin: LoadedPlugin, configured: Set<string>): string[] {
  const known = new Set(derivableActions());
  return Object.keys(plugin.stages).flatMap((short) => {
    const declared = plugin.manifest.serves?.[short];
    const roles = declared !== undefined ? rolesOf(declared) : known.has(short) ? [{ action: short }] : [];
    return roles.filter((r) => !r.check && (r.after === undefined || configured.has(r.after))).map((r) => r.action);
  });
}

const SHIPPED = ['agent.json', 'qemu.json', 'libvirt.json', 'simulator.json', 'fleet-example.json', 'mistify-example.json'].map((n) => path.join(repoRoot, 'config', n));
const ROUTED = [...LIFECYCLE_ACTIONS, ...Object.keys(METRICS_ACTIONS), ...IMAGE_JOB_ACTIONS, ...IMAGE_QUERY_ACTIONS, ...IMAGE_UPLOAD_ACTIONS, ...SNAPSHOT_ACTIONS, VNC_ACTION].filter(
  (a) => !a.startsWith('container'),
);

describe('plans derived from the plugins', function () {
  this.timeout(60_000);

  it('every shipped config is at most about 40 lines and plans every action its plugins serve', async () => {
    for (const file of [...SHIPPED, path.join(repoRoot, 'deploy/agent.json')]) {
      const { plugins, plans } = await check(file);
      const configured = new Set(plugins.map((p) => p.manifest.id));
      for (const plugin of plugins) {
        for (const action of servedBy(plugin, configured)) {
          expect(plans.origins.has(action), `${path.basename(file)}: plugin ${plugin.id} serves ${action}, which is not planned`).to.equal(true);
        }
      }
      if (!file.endsWith('mistify-example.json')) {
        const lines = (await readFile(file, 'utf8')).trimEnd().split('\n').length;
        expect(lines, `${file} lines`).to.be.at.most(40);
      }
    }
  });

  it('the default config (config/agent.json) and the other backends plan every route family: lifecycle, metrics, images, snapshots, vnc', async () => {
    for (const name of ['agent.json', 'qemu.json', 'libvirt.json']) {
      const { plans } = await check(path.join(repoRoot, 'config', name));
      const missing = ROUTED.filter((a) => !plans.origins.has(a));
      expect(missing, `${name} answers 501 for these`).to.deep.equal([]);
      expect([...plans.origins.values()].every((o) => o === 'derived'), `${name}: all derived`).to.equal(true);
    }
    // The simulator has no VNC server; everything else can be tried without a hypervisor.
    for (const name of ['simulator.json', 'fleet-example.json']) {
      const { plans } = await check(path.join(repoRoot, 'config', name));
      expect(ROUTED.filter((a) => !plans.origins.has(a)), name).to.deep.equal([VNC_ACTION]);
    }
  });

  it('plans create to boot, checks before the work, and the long stages with their declared timeouts', async () => {
    const { plans } = await check(path.join(repoRoot, 'config/agent.json'));
    const names = (stages: Array<{ handle: StageHandle }>) => stages.map((s) => s.handle.name);
    const create = plans.lifecycle.get('create')!;
    expect(names(create.sync)).to.deep.equal(['qemu.checkCreate', 'images.requireImages']);
    expect(names(create.async)).to.deep.equal(['qemu.create', 'qemu.start']);
    expect(names(create.asyncLeftOff!), '?start=false stops before the boot').to.deep.equal(['qemu.create']);
    expect(names(plans.lifecycle.get('resume')!.async)).to.deep.equal(['qemu.start']);
    expect(plans.image.get('fetchImage')!.async[0].timeoutMs).to.equal(6 * 3600 * 1000);
    expect(names(plans.snapshot.get('rollbackSnapshot')!.sync)).to.deep.equal(['qemu.checkRollbackSnapshot']);
    const { plans: libvirt } = await check(path.join(repoRoot, 'config/libvirt.json'));
    const fetch = libvirt.image.get('fetchImage')!;
    expect(names(fetch.sync), 'the images plugin checks, then libvirt').to.deep.equal(['images.checkFetch', 'libvirt.checkFetchImage']);
    expect(names(fetch.async), 'libvirt imports what the images plugin fetched').to.deep.equal(['images.fetch', 'libvirt.importImage']);
    expect(names(libvirt.image.get('deleteImage')!.async), "the pool replaces the images plugin's folder").to.deep.equal(['libvirt.deleteImage']);
    expect(names(libvirt.lifecycle.get('create')!.sync)).to.deep.equal(['libvirt.requireImages']);
  });

  it('loads config/mistify-example.json as is: every plan configured by its mistify actions', async () => {
    const { plans } = await check(path.join(repoRoot, 'config/mistify-example.json'));
    expect([...plans.origins.values()].every((o) => o === 'configured')).to.equal(true);
    expect(plans.byType.container.lifecycle.get('create')!.async.map((s) => s.handle.name)).to.deep.equal(['mdocker.MDocker.CreateContainer', 'mdocker.MDocker.StartContainer']);
  });

  describe('composition', () => {
    const config = (actions: AgentConfig['actions'] = {}) => ({ actions, jobs: { stageTimeoutSeconds: 60 } }) as AgentConfig;
    /** Real handles for plugins given as stage name -> kind, with their manifest ids and serves. */
    function world(plugins: Array<PluginStages>): { catalogue: Map<string, StageHandle>; plugins: PluginStages[] } {
      const catalogue = new Map<string, StageHandle>();
      for (const p of plugins) {
        for (const [short, kind] of Object.entries(p.stages)) {
          const name = `${p.id}.${short}`;
          catalogue.set(name, { name, plugin: p.id, kind, call: async () => undefined });
        }
      }
      return { catalogue, plugins };
    }
    const backend = (id: string, extra: Record<string, StageKind> = {}): PluginStages => ({
      id,
      manifestId: id,
      stages: { create: 'action', start: 'action', delete: 'action', cpuMetrics: 'metrics', ...extra },
    });
    const plan = (w: ReturnType<typeof world>, actions?: AgentConfig['actions']) => buildActionPlans(config(actions), 'test.json', w.catalogue, silent, w.plugins);

    it('two plugins doing the same work are a boot error naming both and the fix; an actions entry picks one and the rest stay derived', () => {
      const w = world([backend('one'), backend('two')]);
      expect(() => plan(w)).to.throw(/test\.json: plugins "one" and "two" both provide action "create" \(one\.create, two\.create\); choose with an "actions" entry, e\.g\. "actions": \{"create": \{"async": \["one\.create"\]\}\}/);
      const picked = plan(w, {
        create: { sync: [], async: ['two.create', 'two.start'] },
        start: { sync: [], async: ['two.start'] },
        delete: { sync: [], async: ['two.delete'] },
        cpuMetrics: { sync: [], async: [], stages: ['one.cpuMetrics'] },
      });
      expect(picked.lifecycle.get('create')!.async.map((s) => s.handle.name)).to.deep.equal(['two.create', 'two.start']);
      expect(picked.metrics.get('cpuMetrics')!.stage.handle.name).to.equal('one.cpuMetrics');
      expect(picked.origins.get('create')).to.equal('configured');
    });

    it('an actions entry overrides one plan; the others are derived (a create without start leaves the guest off)', () => {
      const plans = plan(world([backend('sim')]), { create: { sync: [], async: ['sim.create'] } });
      expect(plans.lifecycle.get('create')!.async.map((s) => s.handle.name)).to.deep.equal(['sim.create']);
      expect(plans.lifecycle.get('create')!.asyncLeftOff).to.equal(undefined);
      expect(plans.lifecycle.get('start')!.async.map((s) => s.handle.name)).to.deep.equal(['sim.start']);
      expect(Object.fromEntries(plans.origins)).to.deep.equal({ create: 'configured', start: 'derived', delete: 'derived', cpuMetrics: 'derived' });
    });

    it('plans a container backend from its stage names alone: containerCreate boots with containerStart', () => {
      const containers: PluginStages = { id: 'box', manifestId: 'box', stages: { containerCreate: 'action', containerStart: 'action', containerDelete: 'action', containerCpuMetrics: 'metrics' } };
      const plans = plan(world([backend('vm'), containers]));
      const set = plans.byType.container;
      expect(set.lifecycle.get('create')!.async.map((s) => s.handle.name)).to.deep.equal(['box.containerCreate', 'box.containerStart']);
      expect(set.lifecycle.get('create')!.asyncLeftOff!.map((s) => s.handle.name)).to.deep.equal(['box.containerCreate']);
      expect(set.metrics.get('cpuMetrics')!.stage.handle.name).to.equal('box.containerCpuMetrics');
      expect(plans.lifecycle.get('create')!.async.map((s) => s.handle.name), 'VMs keep their own plan').to.deep.equal(['vm.create', 'vm.start']);
    });

    it("plans a container backend's snapshots apart from the VMs': containerCreateSnapshot... by stage name or serves", () => {
      const vm: PluginStages = { ...backend('vm', { createSnapshot: 'snapshot', listSnapshots: 'snapshot' }) };
      const containers: PluginStages = {
        id: 'box',
        manifestId: 'box',
        stages: { containerCreate: 'action', containerStart: 'action', containerListSnapshots: 'snapshot', takeLayer: 'snapshot', layerTar: 'snapshotDownload' },
        serves: { takeLayer: { action: 'containerCreateSnapshot', timeoutSeconds: 600 }, layerTar: 'containerDownloadSnapshot' },
      };
      const plans = plan(world([vm, containers]));
      const set = plans.byType.container.snapshot;
      expect(set.get('createSnapshot')!.async.map((s) => s.handle.name)).to.deep.equal(['box.takeLayer']);
      expect(set.get('createSnapshot')!.async[0].timeoutMs).to.equal(600_000);
      expect(set.get('listSnapshots')!.sync.map((s) => s.handle.name)).to.deep.equal(['box.containerListSnapshots']);
      expect(set.get('downloadSnapshot')!.sync.map((s) => s.handle.name)).to.deep.equal(['box.layerTar']);
      expect(plans.snapshot.get('createSnapshot')!.async.map((s) => s.handle.name), 'VMs keep their own').to.deep.equal(['vm.createSnapshot']);
      expect(plans.snapshot.has('downloadSnapshot'), 'no VM download from the container backend').to.equal(false);
      expect(plans.origins.get('containerCreateSnapshot')).to.equal('derived');
      // A download stage must be of the download kind, as for VMs.
      const wrong: PluginStages = { ...containers, stages: { ...containers.stages, layerTar: 'snapshot' } };
      expect(() => plan(world([vm, wrong]))).to.throw(/names "box\.layerTar", a snapshot stage, where a snapshotDownload stage is needed/);
    });

    it('checks of every plugin compose; replaces drops a plugin, after needs the plugin it finishes', () => {
      const store: PluginStages = {
        id: 'store',
        manifestId: 'store',
        stages: { checkFetch: 'image', fetch: 'image', list: 'image', requireImages: 'action' },
        serves: { checkFetch: { action: 'fetchImage', check: true }, fetch: 'fetchImage', list: 'listImages', requireImages: { action: 'create', check: true } },
      };
      const pool: PluginStages = {
        ...backend('pool', { importImage: 'image', listImages: 'image', poolCheck: 'action' }),
        serves: { importImage: { action: 'fetchImage', after: 'store' }, listImages: { action: 'listImages', replaces: ['store'] }, poolCheck: { action: 'create', check: true, replaces: ['store'] } },
      };
      const plans = plan(world([pool, store]));
      expect(plans.image.get('fetchImage')!.async.map((s) => s.handle.name)).to.deep.equal(['store.fetch', 'pool.importImage']);
      expect(plans.image.get('listImages')!.sync.map((s) => s.handle.name)).to.deep.equal(['pool.listImages']);
      expect(plans.lifecycle.get('create')!.sync.map((s) => s.handle.name)).to.deep.equal(['pool.poolCheck']);
      const alone = plan(world([pool]));
      expect(alone.image.has('fetchImage'), 'importImage alone is no fetch').to.equal(false);
      expect(alone.image.get('listImages')!.sync.map((s) => s.handle.name)).to.deep.equal(['pool.listImages']);
    });

    it('refuses a serves entry naming a stage the plugin lacks or an action that does not exist', () => {
      expect(() => plan(world([{ ...backend('x'), serves: { boot: 'start' } }]))).to.throw(/plugin "x" declares what its stage "boot" serves, but has no such stage/);
      expect(() => plan(world([{ ...backend('x'), serves: { start: 'launch' } }]))).to.throw(/plugin "x" declares that stage "start" serves "launch", which is no action\. Valid actions: create, delete/);
    });
  });

  it('--check prints the plan, derived or configured, with sync and async stages', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { distRoot } = await import('../support/agent.js');
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(distRoot, 'core/main.js'), '--config', path.join(repoRoot, 'config/agent.json'), '--check']);
    expect(stdout).to.match(/action plans \(46 derived from the plugins, 0 from the config's "actions"/);
    // VMs and containers side by side: a container guest's create runs the LXC plugin's check, create and start.
    expect(stdout).to.match(/\n {2}containerCreate +derived +sync lxc\.check; async lxc\.containerCreate, lxc\.containerStart\n/);
    // A container's snapshot plans by their config names, apart from the VMs'.
    expect(stdout).to.match(/\n {2}containerDownloadSnapshot +derived +sync lxc\.containerDownloadSnapshot \(timeout 3600 s\)\n/);
    expect(stdout).to.match(/\n {2}containerFetchImage +derived +sync images\.containerCheckFetch; async images\.containerFetch \(timeout 21600 s\)\n/);
    expect(stdout).to.match(/\n {2}create +derived +sync qemu\.checkCreate, images\.requireImages; async qemu\.create, qemu\.start\n/);
    expect(stdout).to.match(/\n {2}fetchImage +derived +sync images\.checkFetch; async images\.fetch \(timeout 21600 s\)\n/);
    expect(stdout).to.match(/\n {2}downloadSnapshot +derived +sync qemu\.downloadSnapshot \(timeout 3600 s\)\n/);
  });
});
