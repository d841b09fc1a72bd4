/**
 * The plugin contract. This is the only kernel module a plugin imports: the
 * kernel reaches plugins through `await import()` of the module names in the
 * configuration, and plugins reach the kernel only through what is here.
 *
 * A plugin module's default export is a manifest made with {@link definePlugin}.
 * Importing it must have no side effects: the kernel imports a module once to
 * read its manifest even when the plugin then runs isolated in a child process.
 */
import type { InjectionToken } from 'tsyringe';
import type { ZodType } from 'zod';
import type { Guest } from './wire-types.js';
import { actionStage, metricsStage, type StageHandler, type StageKind, type StageSet } from './stage-kinds.js';

export type * from './wire-types.js';
export * from './stage-kinds.js';
export * from './lifecycle.js';
export * from './config-dialect.js';
export * from './stage-roles.js';
import type { ConfigDialect } from './config-dialect.js';
import type { StageRoles } from './stage-roles.js';

/**
 * Major version of this contract. A manifest states the version it was built
 * for; the loader refuses a plugin built for another major version.
 */
export const PLUGIN_API_VERSION = 1;

/** Injection tokens of the services the kernel hands to each plugin. */
export const Tokens = {
  /** The plugin instance's options, validated by the manifest's schema. */
  Options: 'hyperkern.PluginOptions',
  /** The instance id (the manifest id unless the config names another). */
  PluginId: 'hyperkern.PluginId',
  /** A {@link Logger} bound to this plugin instance. */
  Logger: 'hyperkern.Logger',
  /** A directory this plugin instance owns, created before construction. */
  DataDir: 'hyperkern.PluginDataDir',
  /** The {@link GuestDirectory}: read guests, report what the hypervisor says. */
  Guests: 'hyperkern.GuestDirectory',
  /** {@link PluginDependencies}: the stages of the plugins listed in `dependsOn`. */
  Dependencies: 'hyperkern.PluginDependencies',
  /** {@link AgentInfo}: the agent's version, URL, health and guest changes (in-process plugins only). */
  Agent: 'hyperkern.AgentInfo',
} as const;

/** Structured logger (pino-compatible subset). */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/**
 * How a plugin sees the guest registry. Lifecycle stages change guests by
 * returning them; `observe` is for what the hypervisor reports on its own
 * (the guest powered itself off, its process died), outside any job.
 */
export interface GuestDirectory {
  list(): Promise<Guest[]>;
  get(id: string): Promise<Guest | undefined>;
  /**
   * Record a change the hypervisor reported. Only the given fields change;
   * the guest's metadata is merged key by key. Unknown ids are ignored (the
   * guest may have been deleted meanwhile).
   */
  observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): Promise<void>;
}

/**
 * Facts about the running agent, for plugins that publish them elsewhere
 * (the fleet link registers the host in etcd). Only in-process plugins get
 * it: an isolated plugin's child process has no kernel to ask.
 */
export interface AgentInfo {
  readonly version: string;
  /** When this agent process started, ms since the epoch. */
  readonly startedAt: number;
  /** The API's base URL once it listens; undefined before. */
  url(): string | undefined;
  /** The agent's GET /health status. */
  status(): Promise<'ok' | 'degraded'>;
  /**
   * `listener(guestId)` after each durable change of a guest (created,
   * changed, deleted), in commit order. Returns the unsubscribe function.
   * Listeners run synchronously on the commit path: they must only note
   * the id and return.
   */
  onGuestChange(listener: (guestId: string) => void): () => void;
}

/**
 * What the kernel passes to every stage call besides the request. `signal`
 * and `log` are made when first read (getters): hand the context on as it
 * is, rather than a copy (`{ ...ctx }` has neither).
 */
export interface StageContext {
  /** Full stage name, e.g. `qemu.start`. */
  stage: string;
  /** Aborted when the stage's timeout expires or the agent shuts down. */
  signal: AbortSignal;
  /** Milliseconds the kernel allows this stage. */
  timeoutMs: number;
  /** The job this stage runs in; absent for sync stages and metrics. */
  jobId?: string;
  log: Logger;
  /**
   * Report how far a long transfer is (bytes); shown on the job while it
   * runs. Present for job stages; call it at most a few times a second.
   */
  progress?(progress: TransferProgress): void;
}

export interface TransferProgress {
  done: number;
  /** undefined when the size is not known in advance. */
  total?: number;
}

/** A lifecycle stage handler. */
export type ActionStage = StageHandler<'action'>;
/** A metrics stage handler. */
export type MetricsStage = StageHandler<'metrics'>;

/**
 * The stages of a complete hypervisor backend: every lifecycle action and
 * every metrics type, with their kinds. {@link hypervisorBackendStages}
 * builds a backend's stage set from an object with one method per entry.
 */
export const HYPERVISOR_BACKEND_STAGES = {
  create: 'action',
  start: 'action',
  shutdown: 'action',
  reboot: 'action',
  restart: 'action',
  poweroff: 'action',
  suspend: 'action',
  delete: 'action',
  cpuMetrics: 'metrics',
  nicMetrics: 'metrics',
  diskMetrics: 'metrics',
} as const satisfies Record<string, StageKind>;

/** One handler per stage of a full backend, each typed by its kind. */
export type HypervisorBackendHandlers = {
  [Name in keyof typeof HYPERVISOR_BACKEND_STAGES]: StageHandler<(typeof HYPERVISOR_BACKEND_STAGES)[Name]>;
};

/** The stage set of a full backend: `stages: (qemu) => hypervisorBackendStages(qemu.handlers)`. */
export function hypervisorBackendStages(handlers: HypervisorBackendHandlers): StageSet {
  return {
    create: actionStage(handlers.create),
    start: actionStage(handlers.start),
    shutdown: actionStage(handlers.shutdown),
    reboot: actionStage(handlers.reboot),
    restart: actionStage(handlers.restart),
    poweroff: actionStage(handlers.poweroff),
    suspend: actionStage(handlers.suspend),
    delete: actionStage(handlers.delete),
    cpuMetrics: metricsStage(handlers.cpuMetrics),
    nicMetrics: metricsStage(handlers.nicMetrics),
    diskMetrics: metricsStage(handlers.diskMetrics),
  };
}

/** Another agent of the fleet, as a plugin that knows the fleet finds it ({@link PluginInstance.locateHost}). */
export interface PeerAgent {
  hostId: string;
  /** Its API's base URL, e.g. http://10.0.1.7:8080. */
  url: string;
  /** The bearer token it accepts; absent when it has no auth. */
  token?: string;
}

/**
 * A live host of the fleet as the plugin that knows the fleet reads it (the
 * host record of docs/fleet.md, without its write sequence), for
 * GET /fleet/hosts ({@link PluginInstance.listFleetHosts}).
 */
export interface FleetHostRecord {
  hostId: string;
  /** Its agent's API base URL. */
  apiUrl: string;
  version: string;
  /** When that agent started (ISO 8601). */
  startedAt: string;
  health: 'ok' | 'degraded';
  cpus: { total: number; allotted: number; free: number };
  memoryMiB: { total: number; allotted: number; free: number };
  /** Guests by state. */
  guests: Record<string, number>;
  /** The record of the agent that answers. */
  self: boolean;
}

export interface PluginHealth {
  healthy: boolean;
  message?: string;
  details?: Record<string, unknown>;
}

/**
 * A constructed plugin's life cycle. Its stages are not here: the manifest's
 * `stages` function names them, with their handlers, once.
 */
export interface PluginInstance {
  /** Called once every plugin is constructed, in dependency order, before the API listens. */
  start?(): Promise<void>;
  /** Called on agent shutdown (reverse dependency order); release processes, sockets, timers. */
  stop?(): Promise<void>;
  health?(): Promise<PluginHealth> | PluginHealth;
  /**
   * A plugin that knows the other hosts of a fleet (the fleet link) says
   * where host `hostId`'s agent is and how to authenticate to it: what a
   * move named by host id goes to (docs/migration.md). Undefined when it
   * knows no such live host; throws when it cannot tell now (its store is
   * unreachable). In-process plugins only.
   */
  locateHost?(hostId: string): Promise<PeerAgent | undefined>;
  /**
   * A plugin that knows the fleet (the fleet link) lists its live hosts:
   * what GET /fleet/hosts and the web console's fleet page show. Throws
   * when it cannot read its store now. In-process plugins only.
   */
  listFleetHosts?(): Promise<FleetHostRecord[]>;
  /**
   * A plugin that publishes this host's capacity (the fleet link, whose
   * `capacity` option overrides what the machine has) says the totals it
   * publishes; those it leaves out are the machine's. GET /host answers
   * them, so the host's own view and the fleet's agree.
   */
  hostCapacity?(): HostCapacityOverride;
}

/** Totals a plugin publishes instead of the machine's ({@link PluginInstance.hostCapacity}). */
export interface HostCapacityOverride {
  cpus?: number;
  memoryMiB?: number;
}

/**
 * What a plugin gets (inject {@link Tokens.Dependencies}) to use the plugins
 * its manifest lists in `dependsOn`: their stages, typed by kind. Asking for
 * a plugin not listed, a stage it lacks or a stage of another kind throws,
 * so a mistake fails the boot when asked for in a constructor.
 */
export interface PluginDependencies {
  stage<K extends StageKind>(plugin: string, stage: string, kind: K): StageHandler<K>;
}

/** The plugin class: whatever the injector (tsyringe) can construct. */
export type PluginClass<P> = Extract<InjectionToken<P>, abstract new (...args: never) => unknown>;

/** What {@link definePlugin} takes: the manifest, typed by its options and class. */
export interface PluginDefinition<Options, P extends object> {
  /** Default instance id and stage prefix: `simulator` gives `simulator.start`. */
  id: string;
  version: string;
  /** The {@link PLUGIN_API_VERSION} this plugin was written against. */
  pluginApi: number;
  description?: string;
  /**
   * Plugin instance ids that must be configured alongside this one. They are
   * constructed and started before it (and stopped after); a cycle or an id
   * the config lacks fails the boot. See {@link PluginDependencies}.
   */
  dependsOn?: readonly string[];
  /** Schema of the options; parsing applies defaults. */
  options?: ZodType<Options>;
  /**
   * The plugin class. The kernel resolves it from the plugin's own child
   * container, so its constructor gets `@inject(Tokens.X)` services.
   */
  create: PluginClass<P>;
  /**
   * The one list of this plugin's stages, short name -> stage made with
   * {@link actionStage}, {@link metricsStage} or {@link defineStage}, bound
   * to the constructed instance. Called once per instance.
   */
  stages: (plugin: P) => StageSet;
  /**
   * What the stages not named after an action do in the plans the kernel
   * derives (see {@link StageRoles}): `{ checkCreate: { action: 'create', check: true } }`.
   * An entry replaces the naming rule for that stage.
   */
  serves?: StageRoles;
  /** Another config file format this plugin understands (see ConfigDialect). */
  configDialect?: ConfigDialect;
  /**
   * Guest metadata keys only this plugin writes (through what its stages
   * return or `observe`), e.g. which hypervisor object a guest is. Clients
   * may not set or remove them (PATCH answers 400 naming the key; a create
   * body's values are ignored). A key ending in "." names a prefix.
   */
  ownedMetadata?: readonly string[];
  /**
   * Kinds of stage this backend deliberately does not offer, each with why:
   * the kernel's 501 for such a request quotes it (e.g. `{ migration: '…' }`:
   * docs/migration.md), instead of a bare "offers no such stage".
   */
  declines?: Partial<Record<StageKind, string>>;
}

/** Builds a class's instance in the plugin's container (the kernel supplies it). */
export type ResolveClass = <T>(cls: PluginClass<T>) => T;

/** A plugin built: its life cycle and its stages. */
export interface ConstructedPlugin {
  instance: PluginInstance;
  stages: StageSet;
}

/** A manifest as the kernel reads it (what {@link definePlugin} returns). */
export interface PluginManifest {
  readonly id: string;
  readonly version: string;
  readonly pluginApi: number;
  readonly description?: string;
  readonly dependsOn?: readonly string[];
  readonly options?: ZodType<unknown>;
  readonly configDialect?: ConfigDialect;
  readonly ownedMetadata?: readonly string[];
  readonly declines?: Partial<Record<StageKind, string>>;
  readonly serves?: StageRoles;
  /** The definition's class and stage list, kept for readers; the kernel calls {@link construct}. */
  readonly create: unknown;
  readonly stages: unknown;
  /** Construct the instance and bind its stages. */
  construct(resolve: ResolveClass): ConstructedPlugin;
}

/** Declare a plugin. Checks the manifest's shape early so authors see mistakes at import. */
export function definePlugin<Options, P extends object>(definition: PluginDefinition<Options, P>): PluginManifest {
  if (!/^[a-z][a-z0-9-]*$/.test(definition.id)) {
    throw new TypeError(`plugin id "${definition.id}" must be lower-case letters, digits and dashes`);
  }
  if (typeof definition.create !== 'function') {
    throw new TypeError(`plugin "${definition.id}": create must be a class`);
  }
  if (typeof definition.stages !== 'function') {
    throw new TypeError(`plugin "${definition.id}": stages must be a function of the instance, returning its stages`);
  }
  return Object.freeze({
    ...definition,
    construct(resolve: ResolveClass): ConstructedPlugin {
      const instance: P = resolve(definition.create);
      const lifecycle: PluginInstance = instance;
      return { instance: lifecycle, stages: definition.stages(instance) };
    },
  });
}

/** Brands a StageRejection; a registered symbol, so a plugin built against another copy of this file is recognised too. */
const STAGE_REJECTION = Symbol.for('hyperkern.StageRejection');

/**
 * Throw from a stage to refuse a request with a client error (4xx) instead
 * of a fault: e.g. `new StageRejection(409, 'guest is running; start needs off')`;
 * 501 when this host lacks what the action needs (a backend's runtime is not installed).
 * Any other error thrown by a stage is reported as a failure of that stage.
 */
export class StageRejection extends Error {
  override readonly name = 'StageRejection';
  readonly [STAGE_REJECTION] = true;
  constructor(
    readonly status: 400 | 404 | 409 | 413 | 422 | 501 | 503,
    message: string,
  ) {
    super(message);
  }

  /** Whether `error` is a StageRejection (from this copy of the contract or another). */
  static is(error: unknown): error is StageRejection {
    return typeof error === 'object' && error !== null && STAGE_REJECTION in error;
  }
}
