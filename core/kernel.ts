/**
 * The kernel: wires state, plugins, the job engine and the HTTP API
 * together, and owns their order of start and stop. It knows no hypervisor;
 * everything hypervisor-specific arrives as plugins named in the config.
 */
import 'reflect-metadata';
import { createServer, type Server } from 'node:http';
import type { WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { KernelAgentInfo } from './agent-info.js';
import { buildActionPlans, type ActionPlans } from './jobs/action-plan.js';
import { pluginStagesOf } from './jobs/derived-plans.js';
import { ActionRunner } from './jobs/action-runner.js';
import { ImageRunner } from './jobs/image-runner.js';
import { JobEngine } from './jobs/job-engine.js';
import { LifecycleJobs } from './jobs/lifecycle-jobs.js';
import { SnapshotRunner } from './jobs/snapshot-runner.js';
import { parseListen, type LoadedConfig } from './config/config.js';
import { GuestRegistry } from './guests/guest-registry.js';
import { MovedGuests, type MovedTo } from './guests/moved-guests.js';
import { hostLookupOf, type HostLookup } from './plugins/host-lookup.js';
import { HostMetadata } from './guests/host-metadata.js';
import { ReservedMetadata } from './guests/reserved-metadata.js';
import { answerClientError } from './http/client-error.js';
import { createApp } from './http/app.js';
import { closeSessions, routeUpgrades } from './http/websocket-upgrade.js';
import { VncLocator } from './jobs/vnc-locator.js';
import { JobLog } from './jobs/job-log.js';
import type { AgentLog, AgentLogger } from './logger.js';
import { Tokens } from './contract/plugin-api.js';
import { fleetHostsOf } from './plugins/fleet-hosts.js';
import { hostTotalsOf } from './plugins/host-capacity.js';
import { loadPlugins, pluginHealth, stageCatalogue, type LoadedPlugin } from './plugins/plugin-loader.js';
import { GuestConsoles } from './console/guest-consoles.js';
import { Migrations } from './migration/migrations.js';
import { edgeHooks } from './migration/edge-hooks.js';
import { MigrationMetrics } from './metrics/migration-metrics.js';
import { StateStore } from './state/state-store.js';
import { HealthWatch } from './events/health-watch.js';
import { AgentMetrics } from './metrics/agent-metrics.js';
import { GuestSweep } from './metrics/guest-sweep.js';
import type { SseStream } from './events/sse-stream.js';
import { processIsolation } from './isolation/index.js';
import { DataDirLock } from './state/data-dir-lock.js';
import { Errors } from './errors.js';
import { checkDataDir, explainDataDirFault } from './state/data-dir-check.js';

export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
})();

/** After running jobs had their grace period, open requests (e.g. ?wait) get this long to answer. */
const OPEN_REQUEST_GRACE_MS = 2000;

/** Plugins loaded and action plans resolved: what `--check` validates. */
export async function preparePlugins(
  loaded: LoadedConfig,
  log: AgentLogger,
  container: DependencyContainer,
  dataDir: string,
): Promise<{ plugins: LoadedPlugin[]; plans: ActionPlans }> {
  const plugins = await loadPlugins(loaded.config.plugins, { container, log, dataDir, configFile: loaded.file, isolation: processIsolation });
  try {
    const plans = buildActionPlans(loaded.config, loaded.file, stageCatalogue(plugins), log, pluginStagesOf(plugins));
    return { plugins, plans };
  } catch (error) {
    await Promise.allSettled(plugins.map((p) => p.instance.stop?.()));
    throw error;
  }
}

export class Kernel {
  private server?: Server;
  private readonly eventStreams = new Set<SseStream>();
  /** Open WebSockets (GET /guests/{id}/vnc): closed at stop, as the server's close does not end upgraded connections. */
  private readonly webSockets = new Set<WebSocket>();
  private healthWatch?: HealthWatch;
  /** Guests that moved to another host (a migration): their routes answer 404 with Location. */
  moved!: MovedGuests;
  /** Moves counted from boot; on /metrics once the API listens. */
  private migrationMetrics?: MigrationMetrics;
  /** Fleet hosts by id (a move to `{"host": ...}`), when a plugin knows the fleet (docs/migration.md). */
  locateHost?: HostLookup;

  private constructor(
    readonly loaded: LoadedConfig,
    readonly log: AgentLogger,
    readonly dataDir: string,
    private readonly lock: DataDirLock,
    private readonly store: StateStore,
    readonly registry: GuestRegistry,
    private readonly plugins: LoadedPlugin[],
    readonly engine: JobEngine,
    readonly runner: ActionRunner,
    readonly images: ImageRunner,
    readonly snapshots: SnapshotRunner,
    private readonly metadata: HostMetadata,
    private readonly jobs: JobLog,
    private readonly output: Pick<AgentLog, 'dropped'>,
    private readonly agentInfo: KernelAgentInfo,
    private readonly vnc: VncLocator,
    readonly consoles: GuestConsoles,
    readonly migrations: Migrations,
  ) {}

  /** The change feed (docs/events.md): every committed change, in order. */
  get feed(): StateStore['feed'] {
    return this.store.feed;
  }

  /** `output` is where the log goes; its drop count shows in /health. */
  static async boot(loaded: LoadedConfig, log: AgentLogger, output: Pick<AgentLog, 'dropped'> = { dropped: 0 }): Promise<Kernel> {
    const { config } = loaded;
    const dataDir = path.resolve(config.dataDir);
    // A data dir that cannot hold state (read-only, full, another owner's) stops here, in one line.
    await checkDataDir(dataDir);
    // Then: a second agent on this data dir stops here, having touched nothing.
    const lock = await DataDirLock.acquire(dataDir).catch(async (error) => {
      throw (await explainDataDirFault(dataDir, error)) ?? error;
    });
    let store: StateStore | undefined;
    try {
      store = await StateStore.open(dataDir, { eventRetention: config.events.retention });
      const limits = { keys: config.limits.metadataKeys, bytes: config.limits.metadataBytes };
      const registry = new GuestRegistry(store, log, limits);
      const metadata = new HostMetadata(store, limits);
      const jobs = new JobLog(store, config.jobs.history);
      const moved = new MovedGuests(store);
      await Promise.all([registry.load(), metadata.load(), jobs.load(), moved.load()]);
      forgetReturningGuests(store, registry, moved, log);

      // A fresh root per kernel: kernel services live here, each plugin gets a child.
      const root = globalContainer.createChildContainer();
      root.register(Tokens.Guests, { useValue: registry });
      const agentInfo = new KernelAgentInfo(VERSION, store.feed);
      root.register(Tokens.Agent, { useValue: agentInfo });
      const { plugins, plans } = await preparePlugins(loaded, log, root, dataDir);
      agentInfo.pluginsLoaded(plugins);
      registry.reserved = new ReservedMetadata(plugins.map((p) => [p.id, p.manifest.ownedMetadata ?? []]));
      // One engine runs every job; each kind of job registers its executor with it.
      const engine = new JobEngine(store, registry, jobs, log, config.jobs.concurrency);
      engine.register(new LifecycleJobs(registry, plans));
      const runner = new ActionRunner(registry, plans, engine, log);
      const images = new ImageRunner(jobs, plans, engine, log);
      const snapshots = new SnapshotRunner(registry, jobs, plans, engine, log);
      const vnc = new VncLocator(registry, plans, log);
      const consoles = new GuestConsoles(registry, plans, plugins, (event) => store!.record(event), log, {
        viewerBufferBytes: config.console.viewerBufferBytes,
        stageTimeoutMs: config.jobs.stageTimeoutSeconds * 1000,
      });
      const self = () => ({ url: agentInfo.url() ?? '', ...(config.auth.tokens[0] ? { token: config.auth.tokens[0] } : {}) });
      const locateHost = hostLookupOf(plugins);
      // The moved-guest record lands with the guest's removal from this host (docs/migration.md).
      // Events, /metrics counters and the moved-guest record (landing with the guest's removal from this host).
      const migrationMetrics = new MigrationMetrics();
      const hooks = edgeHooks({ store, moved, metrics: migrationMetrics, selfUrl: () => agentInfo.url() ?? '', log });
      const migrations = await Migrations.create({ store, registry, engine, plans, plugins, log, self, hooks, lookup: locateHost });
      const kernel = new Kernel(loaded, log, dataDir, lock, store, registry, plugins, engine, runner, images, snapshots, metadata, jobs, output, agentInfo, vnc, consoles, migrations);
      kernel.moved = moved;
      kernel.migrationMetrics = migrationMetrics;
      kernel.locateHost = locateHost;
      for (const plugin of plugins) {
        await plugin.instance.start?.();
      }
      kernel.healthWatch = new HealthWatch(() => pluginHealth(plugins), store, log);
      await kernel.healthWatch.start(config.events.healthPollSeconds * 1000);
      return kernel;
    } catch (error) {
      await store?.close().catch(() => undefined);
      await lock.release().catch(() => undefined);
      throw (await explainDataDirFault(dataDir, error)) ?? error;
    }
  }

  /**
   * Boot, then listen: what `hyperkern serve` runs (and the tests' in-process
   * agents). A kernel that cannot listen is stopped again before the error
   * goes up: plugins stopped, data dir unlocked, no job touched.
   */
  static async serve(loaded: LoadedConfig, log: AgentLogger, output?: Pick<AgentLog, 'dropped'>): Promise<{ kernel: Kernel; url: string }> {
    const kernel = await Kernel.boot(loaded, log, output);
    try {
      return { kernel, url: await kernel.listen() };
    } catch (error) {
      await kernel.stop().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Listen on the configured address, then recover the last run's jobs;
   * resolves with the URL. Recovery waits for the socket: an agent that
   * cannot serve must not touch the jobs (actions answer 503 in between).
   */
  async listen(): Promise<string> {
    const { host, port } = parseListen(this.loaded.config.listen);
    const { config } = this.loaded;
    const metrics = new AgentMetrics({
      queue: () => this.engine.stats,
      plugins: () => pluginHealth(this.plugins),
      eventsRetained: () => this.store.eventsRetained(),
      latestEventId: () => this.store.feed.latestId,
    });
    this.engine.telemetry = metrics;
    this.migrationMetrics?.registerIn(metrics.registry);
    const sweep = new GuestSweep(metrics.registry, this.registry, this.runner, {
      deadlineMs: config.metrics.scrapeDeadlineSeconds * 1000,
      concurrency: config.metrics.concurrency,
      guestLabels: config.metrics.guestLabels,
    });
    const guests = { registry: this.registry, runner: this.runner, jobs: this.jobs, maxWaitSeconds: config.jobs.maxWaitSeconds, errorIssues: config.limits.errorIssues };
    const app = createApp({
      log: this.log,
      tokens: config.auth.tokens,
      bodyLimit: config.bodyLimit,
      accessLog: config.accessLog,
      moved: this.moved,
      guests,
      images: { images: this.images, jobs: this.jobs, maxWaitSeconds: config.jobs.maxWaitSeconds },
      snapshots: { snapshots: this.snapshots, runner: this.runner, jobs: this.jobs, log: this.log, maxWaitSeconds: config.jobs.maxWaitSeconds, tickets: this.consoles.tickets },
      host: {
        metadata: this.metadata,
        jobs: this.jobs,
        registry: this.registry,
        runner: this.runner,
        pluginHealth: () => pluginHealth(this.plugins),
        logLinesDropped: () => this.output.dropped,
        version: VERSION,
        startedAt: this.agentInfo.startedAt,
        maxWaitSeconds: config.jobs.maxWaitSeconds,
        totals: hostTotalsOf(this.plugins),
      },
      events: {
        feed: this.store.feed,
        sse: { heartbeatMs: config.events.heartbeatSeconds * 1000, bufferBytes: config.events.clientBufferBytes },
        streams: this.eventStreams,
      },
      metrics: { metrics, sweep },
      vnc: { locator: this.vnc, sessions: this.webSockets },
      consoles: { consoles: this.consoles, sessions: this.webSockets },
      migrations: { ...guests, outgoing: this.migrations.outgoing, incoming: this.migrations.incoming, records: this.migrations.records },
      fleet: { hosts: fleetHostsOf(this.plugins) },
    });
    const handle = app.callback();
    const server = createServer(handle);
    // WebSocket routes (vnc, console) answer through the same app: a refusal is a plain HTTP answer.
    routeUpgrades(server, handle);
    server.on('clientError', answerClientError);
    server.keepAliveTimeout = 65_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      throw Errors.listenAddress(
        `cannot listen on ${config.listen}: ${error.code ?? error.message}${error.code === 'EADDRINUSE' ? ' (another process uses that port; pick another with --listen HOST:PORT)' : ''}`,
        { cause: error },
      );
    });
    const address = server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${shownHost}:${address.port}`;
    // Moves a stopped agent left are resolved before any job runs (docs/migration.md).
    await this.migrations.recover();
    const recovered = await this.engine.recover();
    this.log.info(
      { guests: this.registry.size, jobs: this.jobs.size, ...recovered, plugins: this.plugins.map((p) => p.id), dataDir: this.dataDir, config: this.loaded.file },
      'kernel ready',
    );
    this.agentInfo.listening(url);
    this.log.info({ url, version: VERSION }, 'listening');
    return url;
  }

  /**
   * A move of guest `id` to another host completed (the target runs it):
   * from now on this agent answers its routes 404 naming where it went, with
   * a Location header (docs/migration.md). Durable when the promise resolves.
   */
  recordMovedGuest(id: string, to: MovedTo): Promise<void> {
    return this.moved.record(id, to);
  }

  private get graceMs(): number {
    return this.loaded.config.jobs.shutdownGraceSeconds * 1000;
  }

  /** How long stop() is expected to take at most: running jobs' grace, then open requests'. */
  get stopDeadlineMs(): number {
    return this.graceMs + OPEN_REQUEST_GRACE_MS;
  }

  /**
   * Graceful stop: refuse new connections, let running jobs finish up to the
   * grace period, stop plugins (guests keep running), flush state.
   */
  async stop(): Promise<void> {
    const grace = this.graceMs;
    const closed = this.server ? new Promise<void>((resolve) => this.server!.close(() => resolve())) : Promise.resolve();
    this.server?.closeIdleConnections();
    for (const stream of [...this.eventStreams]) stream.close('the agent is stopping; reconnect with Last-Event-ID when it is back');
    // Console viewers hear why (1001) from their hubs; closeSessions then ends any WebSocket left.
    this.consoles.closeAll('the agent is stopping; attach again when it is back');
    const webSocketsClosed = closeSessions(this.webSockets, 'the agent is stopping', OPEN_REQUEST_GRACE_MS);
    await this.engine.shutdown(grace);
    // Requests still open (e.g. ?wait) get a moment to answer, then are cut.
    const cut = setTimeout(() => this.server?.closeAllConnections(), OPEN_REQUEST_GRACE_MS);
    await Promise.all([closed, webSocketsClosed]);
    clearTimeout(cut);
    for (const plugin of [...this.plugins].reverse()) {
      try {
        await plugin.instance.stop?.();
      } catch (error) {
        this.log.warn({ plugin: plugin.id, error: (error as Error).message }, 'plugin did not stop cleanly');
      }
    }
    this.healthWatch?.stop();
    this.migrations.stop();
    await this.store.close();
    await this.lock.release();
    this.log.info('stopped');
  }
}

/** A guest that is on this host again (moved back, created anew) loses its moved record. */
function forgetReturningGuests(store: StateStore, registry: GuestRegistry, moved: MovedGuests, log: AgentLogger): void {
  const forget = (id: string) => {
    if (moved.size === 0 || registry.jsonOf(id) === undefined) return;
    moved.forget(id).catch((error: unknown) => log.warn({ guest: id, error: (error as Error).message }, 'could not drop the moved record of a guest that is back'));
  };
  // Records of guests already back when the agent starts (a crash between the two writes).
  for (const guest of registry.all()) forget(guest.id);
  store.feed.subscribe((event) => {
    if (event.guest !== undefined && event.type.startsWith('guest.')) forget(event.guest);
  });
}
