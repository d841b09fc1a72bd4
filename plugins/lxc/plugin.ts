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
  ObserveQueue,
  StageRejection,
  timeoutArg,
  Tokens,
  type Guest,
  type GuestDirectory,
  type GuestRequest,
  type GuestResponse,
  type GuestState,
  type Logger,
  type PluginHealth,
  type PluginInstance,
  type StageContext,
} from '../../core/contract/index.js';
import { containerNicLines } from './container-nics.js';
import { ContainerPaths, CONTAINERS_FOLDER, guestIdOf } from './container-paths.js';
import { ContainerRuntime, removeLeftoverCgroups } from './container-runtime.js';
import { exitReason, runState } from './container-state.js';
import { readImageBundle } from './image-bundle.js';
import { lxcConfig } from './lxc-config.js';
import { LxcMonitor, type LxcStateName } from './lxc-monitor.js';
import { LXC_MISSING, LxcTools } from './lxc-tools.js';
import { resolveLxcOptions, type LxcOptions } from './options.js';

/** The guest type this backend runs (mistify's). */
export const CONTAINER_TYPE = 'container';

/** Seconds a forced stop may take before lxc-stop -k is asked instead. */
const KILL_WAIT_MS = 10_000;

/** How long after an action its LXC state events are still taken as its own. */
const LATE_EVENT_MS = 1000;

@injectable()
export class LxcPlugin implements PluginInstance {
  readonly options: LxcOptions;
  readonly tools: LxcTools;
  /** Whether LXC's programs are installed: without them every container action answers 501. */
  readonly installed: boolean;
  private readonly monitor: LxcMonitor;
  private readonly runtime: ContainerRuntime;
  private readonly observations: ObserveQueue;
  /** Guests with an action of this plugin in progress: the state changes LXC reports for them are that action's. */
  private readonly busy = new Map<string, number>();
  /** Guests LXC reported a change of while busy: looked at again once not. */
  private readonly recheck = new Set<string>();
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
    this.monitor = new LxcMonitor(this.tools.program('lxc-monitor'), path.join(dataDir, CONTAINERS_FOLDER), log, (name, state) => this.onLxcState(name, state));
    this.runtime = new ContainerRuntime(this.tools, this.monitor);
    this.observations = new ObserveQueue(guests, log, 'LXC');
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
    this.version = (await this.tools.run('lxc-start', ['--version']).catch(() => 'unknown')).trim();
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
    await Promise.all(guests.map((guest) => this.reattach(guest)));
    this.log.info({ lxc: this.version, containerImagesDir: this.options.containerImagesDir, unprivileged: this.options.unprivileged, containers: guests.length }, 'LXC backend ready');
  }

  /** Stops listening; the containers keep running under LXC's monitors. */
  async stop(): Promise<void> {
    this.monitor.stop();
    await this.observations.drained();
  }

  health(): PluginHealth {
    return this.installed
      ? { healthy: true, details: { lxc: this.version, unprivileged: this.options.unprivileged } }
      : { healthy: true, message: LXC_MISSING, details: { lxc: 'not installed' } };
  }

  /** A container's state as LXC has it, recorded when it differs from the registry's. */
  private async reattach(guest: Guest): Promise<void> {
    const paths = this.paths(guest.id);
    if (!(await isDirectory(paths.dir))) return;
    const now = await runState(paths);
    if (now === 'running' || now === 'frozen') {
      const state: GuestState = now === 'running' ? 'running' : 'suspended';
      this.log.info({ guest: guest.id, state }, 'container found running at agent start');
      if (guest.state !== state) this.observations.observe(guest.id, { state }, `container found ${state} at agent start`);
    } else if (guest.state === 'running' || guest.state === 'suspended') {
      const { state, reason } = await exitReason(paths);
      this.observations.observe(guest.id, { state }, `${reason} while the agent was not running`);
    }
  }

  /**
   * LXC's state events: a stop or start no action of this plugin asked for
   * is the container's own doing. An event only says "look again": the
   * container as it is now is compared with the guest as the registry has
   * it, once no action of this plugin runs on it (nor ran within
   * LATE_EVENT_MS: LXC's monitor daemon relays events, they can come late).
   */
  private onLxcState(name: string, state: LxcStateName): void {
    const id = guestIdOf(name);
    if (id === undefined || (state !== 'STOPPED' && state !== 'RUNNING')) return;
    if (this.busy.has(id)) this.recheck.add(id);
    else this.reconcile(id);
  }

  private reconcile(id: string): void {
    this.observations.enqueue(async () => {
      if (this.busy.has(id)) return void this.recheck.add(id);
      const guest = await this.guests.get(id);
      if (!guest || guest.type !== CONTAINER_TYPE) return;
      const paths = this.paths(guest.id);
      const now = await runState(paths);
      const registryRuns = guest.state === 'running' || guest.state === 'suspended';
      if (now === 'stopped' && registryRuns) {
        const { state: end, reason } = await exitReason(paths);
        this.log.info({ guest: id, state: end, reason }, 'container stopped on its own');
        await this.guests.observe(id, { state: end }, reason);
      } else if (now !== 'stopped' && !registryRuns && guest.state !== 'creating' && guest.state !== 'deleting' && (await isDirectory(paths.dir))) {
        await this.guests.observe(id, { state: now === 'running' ? 'running' : 'suspended' }, 'LXC reports the container running (started outside the agent, or restarted itself)');
      }
    }, { guest: id });
  }

  // ---- stages --------------------------------------------------------------

  /** Sync check of every container action: 501 without LXC; for a create, a 400 for what it would refuse. */
  readonly check = async ({ guest, action }: GuestRequest): Promise<void> => {
    if (!this.installed) throw new StageRejection(501, LXC_MISSING);
    if (action === 'create' || action === 'containerCreate') await this.checkCreate(guest);
  };

  private async checkCreate(guest: Guest): Promise<void> {
    if (guest.disks.length > 0) throw new StageRejection(400, 'disks: a container guest has no disks (its root is a layer over its image); leave disks empty');
    if (!guest.image) throw new StageRejection(400, 'image: a container guest names its container image (GET /images?type=container lists them)');
    await readImageBundle(this.options.containerImagesDir, guest.image);
    if (this.options.unprivileged && this.unreachable) {
      throw new StageRejection(503, "unprivileged containers cannot reach their folders on this host: a folder above the LXC plugin's data dir or its containerImagesDir is not searchable by others (the agent's log names it; chmod o+x it)");
    }
  }

  /** Serialises nothing (the kernel runs one job per guest); marks the guest busy so LXC's events are not taken for its own doing. */
  private async busyWith<T>(id: string, work: () => Promise<T>): Promise<T> {
    const count = (this.busy.get(id) ?? 0) + 1;
    this.busy.set(id, count);
    try {
      return await work();
    } finally {
      // Held a little longer: LXC's events of this action may still be on their way.
      setTimeout(() => {
        const left = (this.busy.get(id) ?? 1) - 1;
        if (left > 0) return void this.busy.set(id, left);
        this.busy.delete(id);
        if (this.recheck.delete(id)) this.reconcile(id);
      }, LATE_EVENT_MS).unref();
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
      await writeFile(paths.config, lxcConfig({ guest, paths, bundle, options: this.options, nicLines: containerNicLines(guest, paths) }));
      return { guest: { ...guest, state: 'off' }, message: 'container created' };
    } catch (error) {
      await rm(paths.dir, { recursive: true, force: true });
      throw error;
    }
  };

  readonly startContainer = ({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> =>
    this.busyWith(guest.id, async () => {
      const paths = this.paths(guest.id);
      const now = await this.requireContainer(guest, paths);
      if (now === 'frozen') {
        await this.runtime.setFrozen(paths, false);
        return { guest: { ...guest, state: 'running' }, message: 'resumed' };
      }
      if (now === 'running') return { guest: { ...guest, state: 'running' }, message: 'already running' };
      const bundle = await readImageBundle(this.options.containerImagesDir, guest.image);
      await this.runtime.start(paths, bundle.process.args, this.options.startTimeoutSeconds * 1000, ctx.signal);
      return { guest: { ...guest, state: 'running' }, message: 'container started' };
    });

  readonly shutdown = ({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> =>
    this.busyWith(guest.id, async () => {
      const seconds = timeoutArg(args, this.options.shutdownTimeoutSeconds);
      const paths = this.paths(guest.id);
      if ((await this.requireContainer(guest, paths)) === 'stopped') return { guest: { ...guest, state: offState(guest) }, message: 'container was not running' };
      await this.stopGracefully(guest, paths, seconds, ctx);
      return { guest: { ...guest, state: 'shutdown' }, message: 'container stopped' };
    });

  readonly reboot = ({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> =>
    this.busyWith(guest.id, async () => {
      const seconds = timeoutArg(args, this.options.rebootTimeoutSeconds);
      const paths = this.paths(guest.id);
      if ((await this.requireContainer(guest, paths)) !== 'stopped') await this.stopGracefully(guest, paths, seconds, ctx);
      const bundle = await readImageBundle(this.options.containerImagesDir, guest.image);
      await this.runtime.start(paths, bundle.process.args, this.options.startTimeoutSeconds * 1000, ctx.signal);
      return { guest: { ...guest, state: 'running' }, message: 'container stopped and started again' };
    });

  readonly restart = ({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> =>
    this.busyWith(guest.id, async () => {
      const paths = this.paths(guest.id);
      await this.requireContainer(guest, paths);
      const killed = await this.runtime.kill(paths, KILL_WAIT_MS);
      ctx.log.debug({ guest: guest.id, killed }, 'container killed for a restart');
      const bundle = await readImageBundle(this.options.containerImagesDir, guest.image);
      await this.runtime.start(paths, bundle.process.args, this.options.startTimeoutSeconds * 1000, ctx.signal);
      return { guest: { ...guest, state: 'running' }, message: 'container killed and started again' };
    });

  readonly poweroff = ({ guest }: GuestRequest): Promise<GuestResponse> =>
    this.busyWith(guest.id, async () => {
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
    this.busyWith(guest.id, async () => {
      const paths = this.paths(guest.id);
      if (await isDirectory(paths.dir)) {
        await this.runtime.kill(paths, KILL_WAIT_MS);
        await rm(paths.dir, { recursive: true, force: true });
      }
      await removeLeftoverCgroups(paths);
      return { guest: { ...guest, state: 'deleted' }, message: 'container, its layer and cgroups removed' };
    });

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
    if (!(await isDirectory(paths.dir))) throw new StageRejection(409, `guest ${guest.id} has no container on this host (it was not created by the LXC backend)`);
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

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then((s) => s.isDirectory(), () => false);
}
