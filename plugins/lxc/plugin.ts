/**
 * The container backend: guests with `type: "container"` as LXC 5 system
 * containers. A create writes the container's LXC config and an empty
 * writable layer over the image's read-only base (overlayfs: no copy);
 * lifecycle actions start it with lxc-start and otherwise signal its init
 * and write its freezer in process; LXC's monitor keeps a container
 * running when the agent stops, and its state events (one lxc-monitor for
 * all containers) report exits the agent did not ask for. See
 * docs/containers.md.
 */
import { chmod, chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inject, injectable } from 'tsyringe';
import {
  StageRejection,
  timeoutArg,
  Tokens,
  type Guest,
  type GuestDirectory,
  type GuestMetricsRequest,
  type GuestMetricsResponse,
  type GuestNicMetrics,
  type GuestRequest,
  type GuestResponse,
  type GuestState,
  type ConsoleRequest,
  type GuestConsole,
  type Logger,
  type PluginHealth,
  type PluginInstance,
  type StageContext,
} from '../../core/contract/index.js';
import { blkioAccountingLines } from './cgroup-blkio.js';
import { consoleConfigLines, consolePlace, ContainerConsoles, SWEEP_MS } from './container-console.js';
import { ContainerSnapshots } from './container-snapshots.js';
import { containerLayer, HOST_SNAPSHOT_TOOLS, layerSnapshotStages } from './container-snapshots-stages.js';
import { ContainerMetrics } from './container-metrics.js';
import { checkBridges, checkStartable, forgetNicCounters, nicConfigLines, nicDevices, planContainerNics } from './container-nics.js';
import { removeContainerFolder } from './container-folder-removal.js';
import { ContainerPaths, CONTAINERS_FOLDER } from './container-paths.js';
import { ContainerRuntime, removeLeftoverCgroups } from './container-runtime.js';
import { hasContainerFolder, runState } from './container-state.js';
import { ContainerWatch, isDirectory } from './container-watch.js';
import { readImageBundle } from './image-bundle.js';
import { lxcConfig } from './lxc-config.js';
import { LxcMonitor } from './lxc-monitor.js';
import { LXC_MISSING, LxcTools } from './lxc-tools.js';
import { resolveLxcOptions, type LxcOptions } from './options.js';

/** The guest type this backend runs (mistify's). */
export const CONTAINER_TYPE = 'container';

/** Seconds a forced stop may take before lxc-stop -k is asked instead. */
const KILL_WAIT_MS = 10_000;


@injectable()
export class LxcPlugin implements PluginInstance {
  readonly options: LxcOptions;
  readonly tools: LxcTools;
  /** Whether LXC's programs are installed: without them every container action answers 501. */
  readonly installed: boolean;
  private readonly monitor: LxcMonitor;
  private readonly runtime: ContainerRuntime;
  private readonly watch: ContainerWatch;
  private readonly metrics: ContainerMetrics;
  /** The containers' /dev/console (the console stage; container-console.ts). */
  private readonly consoles: ContainerConsoles;
  /** Snapshots of the containers' layers (container-snapshots*.ts); the manifest makes their stages its own. */
  private readonly snapshots = new ContainerSnapshots(HOST_SNAPSHOT_TOOLS);
  readonly snapshotStages: ReturnType<typeof layerSnapshotStages>;
  private version = 'unknown';
  /** A folder above the containers or the images that others may not search (o+x), which mapped roots need. */
  private unreachable: string | undefined;

  constructor(
    @inject(Tokens.Options) options: LxcOptions,
    @inject(Tokens.Logger) private readonly log: Logger,
    @inject(Tokens.DataDir) private readonly dataDir: string,
    @inject(Tokens.Guests) private readonly guests: GuestDirectory,
  ) {
    this.options = resolveLxcOptions(options);
    this.tools = new LxcTools(this.options.lxcBinDir);
    this.installed = this.tools.installed();
    this.watch = new ContainerWatch(guests, log, (id) => this.paths(id), (guest) => guest.type === CONTAINER_TYPE);
    this.monitor = new LxcMonitor(this.tools.program('lxc-monitor'), path.join(dataDir, CONTAINERS_FOLDER), log, this.watch.onLxcState);
    this.runtime = new ContainerRuntime(this.tools, this.monitor);
    this.metrics = new ContainerMetrics((guestId, controller) => this.paths(guestId).cgroup(controller), nicDevices); // NICs checked at create: not re-checked per request
    this.consoles = new ContainerConsoles(this.tools.program('lxc-console'), (id) => consolePlace(this.paths(id)), this.options.consoleLogBytes, log);
    this.snapshotStages = layerSnapshotStages(this.snapshots, (id) => this.paths(id));
  }

  /** The paths and names of a guest's container (container-paths.ts). */
  paths(guestId: string): ContainerPaths {
    return new ContainerPaths(this.dataDir, guestId);
  }

  // ---- plugin lifecycle ----------------------------------------------------

  /** Listens to LXC's state events, then finds the containers that kept running (or stopped) while the agent was away. */
  async start(): Promise<void> {
    if (!this.installed) {
      this.log.warn({ lxcBinDir: this.options.lxcBinDir }, `LXC is not installed; container requests answer 501 (${LXC_MISSING})`);
      return;
    }
    this.version = await this.tools.version();
    const lxcPath = path.join(this.dataDir, CONTAINERS_FOLDER);
    await mkdir(lxcPath, { recursive: true });
    // The containers' mapped root must be able to walk to its layer (o+x, no listing).
    if (this.options.unprivileged) for (const dir of [this.dataDir, lxcPath]) await chmod(dir, ((await stat(dir)).mode & 0o777) | 0o011);
    this.unreachable = await firstUnsearchable([lxcPath, this.options.containerImagesDir]);
    if (this.options.unprivileged && this.unreachable) {
      this.log.error({ folder: this.unreachable }, 'this folder is not searchable by others (o+x): unprivileged containers cannot reach their layer or image; chmod o+x it');
    }
    await this.monitor.start();
    const guests = (await this.guests.list()).filter((g) => g.type === CONTAINER_TYPE);
    // Before the states are read: a container a killed agent's snapshot left frozen is running, not suspended.
    await Promise.all(guests.map((guest) => this.recoverSnapshots(guest)));
    await Promise.all(guests.map((guest) => this.watch.reattach(guest)));
    await this.watch.drained(); // recorded before the API answers: a client never reads the state from before the agent stopped
    this.consoles.sweepEvery(SWEEP_MS, async () => (await this.guests.list()).filter((g) => g.type === CONTAINER_TYPE).map((g) => g.id));
    this.log.info({ lxc: this.version, containerImagesDir: this.options.containerImagesDir, unprivileged: this.options.unprivileged, containers: guests.length }, 'LXC backend ready');
  }

  /** What a snapshot or rollback cut short by the agent's end left of this container, put right (container-snapshots-recovery.ts). */
  private async recoverSnapshots(guest: Guest): Promise<void> {
    const paths = this.paths(guest.id);
    if (!(await isDirectory(paths.dir))) return;
    try {
      const found = await this.snapshots.recover(containerLayer(paths));
      if (found.thawed || found.partials > 0 || found.layerRestored) this.log.warn({ guest: guest.id, ...found }, 'put right what a snapshot or rollback cut short by the agent\'s end left');
    } catch (error) {
      this.log.error({ guest: guest.id, err: (error as Error).message }, 'could not put right what a snapshot or rollback cut short left of this container');
    }
  }

  /** Stops listening; the containers keep running under LXC's monitors. */
  async stop(): Promise<void> {
    this.monitor.stop();
    this.metrics.close();
    this.consoles.stop();
    await this.watch.drained();
    await this.tools.close();
  }

  health(): PluginHealth {
    return this.installed
      ? { healthy: true, details: { lxc: this.version, unprivileged: this.options.unprivileged } }
      : { healthy: true, message: LXC_MISSING, details: { lxc: 'not installed' } };
  }

  // ---- stages --------------------------------------------------------------

  /** GET /guests/{id}/console: the container's /dev/console, reached by the kernel directly (docs/console.md). */
  readonly console = (request: ConsoleRequest): Promise<GuestConsole> => this.consoles.open(request);

  /** Sync check of every container action: 501 without LXC; for a create, a 400 for what it would refuse. */
  readonly check = async ({ guest, action }: GuestRequest): Promise<void> => {
    if (!this.installed) throw new StageRejection(501, LXC_MISSING);
    if (action === 'create' || action === 'containerCreate') await this.checkCreate(guest);
  };

  private async checkCreate(guest: Guest): Promise<void> {
    if (guest.disks.length > 0) throw new StageRejection(400, 'disks: a container guest has no disks (its root is a layer over its image); leave disks empty');
    if (!guest.image) throw new StageRejection(400, 'image: a container guest names its container image (GET /images?type=container lists them)');
    await readImageBundle(this.options.containerImagesDir, guest.image);
    checkBridges(planContainerNics(guest));
    if (this.options.unprivileged && this.unreachable) {
      throw new StageRejection(503, "unprivileged containers cannot reach their folders on this host: a folder above the LXC plugin's data dir or its containerImagesDir is not searchable by others (the agent's log names it; chmod o+x it)");
    }
  }

  readonly create = async ({ guest }: GuestRequest): Promise<GuestResponse> => {
    if (!this.installed) throw new StageRejection(501, LXC_MISSING);
    await this.checkCreate(guest);
    const bundle = await readImageBundle(this.options.containerImagesDir, guest.image);
    const paths = this.paths(guest.id);
    await mkdir(paths.lxcPath, { recursive: true });
    try {
      await mkdir(paths.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`guest ${guest.id} already has a container folder; refusing to create it again`);
      throw error;
    }
    try {
      await mkdir(paths.upper);
      await mkdir(paths.work);
      if (this.options.unprivileged) {
        // Root inside is idmapBase outside: it owns its layer, and may walk to the image's base (the bundle folder umoci made 0700).
        await chown(paths.upper, this.options.idmapBase, this.options.idmapBase);
        await chown(paths.work, this.options.idmapBase, this.options.idmapBase);
        const bundleDir = path.dirname(bundle.rootfs);
        await chmod(bundleDir, ((await stat(bundleDir)).mode & 0o777) | 0o011);
      }
      const nics = planContainerNics(guest);
      // The I/O of its layer counted in its blkio cgroup (cgroup-v1.ts); its NICs as veth pairs (container-nics.ts).
      const extraLines = [...blkioAccountingLines([paths.upper, bundle.rootfs]), ...nicConfigLines(nics), ...consoleConfigLines(consolePlace(paths))];
      await writeFile(paths.config, lxcConfig({ guest, paths, bundle, options: this.options, extraLines }));
      return { guest: { ...guest, nics: guest.nics.map((nic, i) => ({ ...nic, device: nics[i].hostDevice })), state: 'off' }, message: 'container created' };
    } catch (error) {
      await rm(paths.dir, { recursive: true, force: true });
      throw error;
    }
  };

  readonly startContainer = ({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> =>
    this.watch.busyWith(guest.id, async () => {
      const paths = this.paths(guest.id);
      const now = await this.requireContainer(guest, paths);
      if (now === 'frozen') {
        await this.runtime.setFrozen(paths, false);
        return { guest: { ...guest, state: 'running' }, message: 'resumed' };
      }
      if (now === 'running') return { guest: { ...guest, state: 'running' }, message: 'already running' };
      await this.launch(guest, paths, ctx);
      return { guest: { ...guest, state: 'running' }, message: 'container started' };
    });

  readonly shutdown = ({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> =>
    this.watch.busyWith(guest.id, async () => {
      const seconds = timeoutArg(args, this.options.shutdownTimeoutSeconds);
      const paths = this.paths(guest.id);
      if ((await this.requireContainer(guest, paths)) === 'stopped') return { guest: { ...guest, state: offState(guest) }, message: 'container was not running' };
      await this.stopGracefully(guest, paths, seconds, ctx);
      return { guest: { ...guest, state: 'shutdown' }, message: 'container stopped' };
    });

  readonly reboot = ({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> =>
    this.watch.busyWith(guest.id, async () => {
      const seconds = timeoutArg(args, this.options.rebootTimeoutSeconds);
      const paths = this.paths(guest.id);
      if ((await this.requireContainer(guest, paths)) !== 'stopped') await this.stopGracefully(guest, paths, seconds, ctx);
      await this.launch(guest, paths, ctx);
      return { guest: { ...guest, state: 'running' }, message: 'container stopped and started again' };
    });

  readonly restart = ({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> =>
    this.watch.busyWith(guest.id, async () => {
      const paths = this.paths(guest.id);
      await this.requireContainer(guest, paths);
      const killed = await this.runtime.kill(paths, KILL_WAIT_MS);
      ctx.log.debug({ guest: guest.id, killed }, 'container killed for a restart');
      await this.launch(guest, paths, ctx);
      return { guest: { ...guest, state: 'running' }, message: 'container killed and started again' };
    });

  readonly poweroff = ({ guest }: GuestRequest): Promise<GuestResponse> =>
    this.watch.busyWith(guest.id, async () => {
      const paths = this.paths(guest.id);
      await this.requireContainer(guest, paths);
      const killed = await this.runtime.kill(paths, KILL_WAIT_MS);
      return { guest: { ...guest, state: 'off' }, message: killed ? 'container killed (SIGKILL)' : 'container was not running' };
    });

  readonly suspend = async ({ guest }: GuestRequest): Promise<GuestResponse> => {
    const paths = this.paths(guest.id);
    if ((await this.requireContainer(guest, paths)) === 'stopped') throw new StageRejection(409, `container ${guest.id} is not running; suspend needs a running container`);
    await this.runtime.setFrozen(paths, true);
    return { guest: { ...guest, state: 'suspended' }, message: 'container frozen' };
  };

  readonly resume = async ({ guest }: GuestRequest): Promise<GuestResponse> => {
    const paths = this.paths(guest.id);
    if ((await this.requireContainer(guest, paths)) === 'stopped') throw new StageRejection(409, `container ${guest.id} is not running; resume needs a suspended container`);
    await this.runtime.setFrozen(paths, false);
    return { guest: { ...guest, state: 'running' }, message: 'container thawed' };
  };

  readonly delete = ({ guest }: GuestRequest): Promise<GuestResponse> =>
    this.watch.busyWith(guest.id, async () => {
      const paths = this.paths(guest.id);
      this.consoles.closeAll(guest.id);
      if (await isDirectory(paths.dir)) {
        // Returns once LXC is done with the container (its cgroups gone), not after its monitor's own tidy-up (container-runtime.ts).
        await this.runtime.kill(paths, KILL_WAIT_MS);
        await removeContainerFolder(paths);
      }
      await removeLeftoverCgroups(paths);
      this.metrics.forget(guest.id);
      forgetNicCounters(planContainerNics(guest));
      return { guest: { ...guest, state: 'deleted' }, message: 'container, its layer and cgroups removed' };
    });

  /** lxc-start with the image's command, once the NICs' bridges are known to be there. */
  private async launch(guest: Guest, paths: ContainerPaths, ctx: StageContext): Promise<void> {
    const nics = planContainerNics(guest);
    await checkStartable(nics);
    forgetNicCounters(nics); // the host ends are made anew: counters of the last run's devices are stale
    const bundle = await readImageBundle(this.options.containerImagesDir, guest.image);
    await this.runtime.start(paths, bundle.process.args, this.options.startTimeoutSeconds * 1000, ctx.signal);
    this.consoles.started(guest.id, 'the container started');
  }

  // ---- metrics: read from the kernel's files in process (container-metrics.ts), never behind a job ----

  readonly cpuMetrics = ({ guest }: GuestMetricsRequest): GuestMetricsResponse => ({ guest, type: 'cpu', cpu: this.metricsOf(guest).cpu(guest) });
  readonly diskMetrics = ({ guest }: GuestMetricsRequest): GuestMetricsResponse => ({ guest, type: 'disk', disk: this.metricsOf(guest).disk(guest) });
  readonly nicMetrics = ({ guest }: GuestMetricsRequest): GuestMetricsResponse => ({ guest, type: 'nic', nic: this.metricsOf(guest).nic(guest) as Record<string, GuestNicMetrics> });

  private metricsOf(guest: Guest): ContainerMetrics {
    if (!this.installed) throw new StageRejection(501, LXC_MISSING);
    return this.metrics;
  }

  /** The stop signal (the image's, else SIGPWR), then a wait bounded by `seconds`: past it the job fails and the container runs on. */
  private async stopGracefully(guest: Guest, paths: ContainerPaths, seconds: number, ctx: StageContext): Promise<void> {
    const bundle = await readImageBundle(this.options.containerImagesDir, guest.image);
    const wait = await this.runtime.stopped(paths);
    if (!(await this.runtime.signalInit(paths, bundle.process.stopSignal))) {
      wait.cancel();
      return;
    }
    if (!(await wait.wait(seconds * 1000, ctx.signal))) {
      throw new Error(`container did not stop within ${seconds} s of ${bundle.process.stopSignal} to its init (does it handle that signal?); it is still running (poweroff kills it)`);
    }
  }

  /** The container's run state; a 409 when this plugin never made it. */
  private async requireContainer(guest: Guest, paths: ContainerPaths): Promise<'stopped' | 'running' | 'frozen'> {
    if (!this.installed) throw new StageRejection(501, LXC_MISSING);
    if (!hasContainerFolder(paths)) throw new StageRejection(409, `guest ${guest.id} has no container on this host (it was not created by the LXC backend)`);
    return runState(paths);
  }
}

/** A container that is not running: keep "shutdown" if that is how it stopped. */
function offState(guest: Guest): GuestState {
  return guest.state === 'shutdown' || guest.state === 'crashed' ? guest.state : 'off';
}

/** The first folder on the way to any of `dirs` (from /) without o+x, if one lacks it. */
async function firstUnsearchable(dirs: string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    const parts = path.resolve(dir).split(path.sep).filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const folder = path.sep + parts.slice(0, i).join(path.sep);
      const mode = await stat(folder).then((s) => s.mode, () => undefined);
      if (mode !== undefined && (mode & 0o001) === 0) return folder;
    }
  }
  return undefined;
}
