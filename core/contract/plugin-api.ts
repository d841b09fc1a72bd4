/**
 * The plugin contract. This is the only kernel module a plugin imports: the
 * kernel reaches plugins through `await import()` of the module names in the
 * configuration, and plugins reach the kernel only through what is here.
 *
 * A plugin module's default export is a manifest made with {@link definePlugin}.
 * Importing it must have no side effects: the kernel imports a module once to
 * read its manifest even when the plugin then runs isolated in a child process.
 */
import type { ZodType } from 'zod';
import type {
  Guest,
  GuestMetricsRequest,
  GuestMetricsResponse,
  GuestRequest,
  GuestResponse,
} from './wire-types.js';

export type * from './wire-types.js';

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

/** What the kernel passes to every stage call besides the request. */
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
}

export type ActionStage = (
  request: GuestRequest,
  ctx: StageContext,
) => Promise<GuestResponse | void> | GuestResponse | void;

export type MetricsStage = (
  request: GuestMetricsRequest,
  ctx: StageContext,
) => Promise<GuestMetricsResponse> | GuestMetricsResponse;

/** `action` stages take a GuestRequest; `metrics` stages a GuestMetricsRequest. */
export type StageKind = 'action' | 'metrics';

/**
 * The stages of a complete hypervisor backend: every lifecycle action and
 * every metrics type. A backend manifest can declare `stages: HYPERVISOR_BACKEND_STAGES`.
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

export interface PluginHealth {
  healthy: boolean;
  message?: string;
  details?: Record<string, unknown>;
}

/** A constructed plugin: the handlers for the stages its manifest declares. */
export interface PluginInstance {
  /** One handler per stage name the manifest declares (short names). */
  readonly stages: Record<string, ActionStage | MetricsStage>;
  /** Called once every plugin is constructed, before the API listens. */
  start?(): Promise<void>;
  /** Called on agent shutdown; release processes, sockets, timers. */
  stop?(): Promise<void>;
  health?(): Promise<PluginHealth> | PluginHealth;
}

export interface PluginManifest<Options = unknown> {
  /** Default instance id and stage prefix: `simulator` gives `simulator.start`. */
  id: string;
  version: string;
  /** The {@link PLUGIN_API_VERSION} this plugin was written against. */
  pluginApi: number;
  description?: string;
  /** Plugin instance ids that must be configured alongside this one. */
  dependsOn?: string[];
  /** Schema of the options; parsing applies defaults. */
  options?: ZodType<Options>;
  /**
   * The stages this plugin contributes, short name -> kind. A function when
   * the set depends on the options (e.g. a bridge to an external service).
   */
  stages: Record<string, StageKind> | ((options: Options) => Record<string, StageKind>);
  /**
   * The plugin class. The kernel resolves it from the plugin's own child
   * container, so its constructor gets `@inject(Tokens.X)` services.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  create: new (...args: any[]) => PluginInstance;
}

/** Declare a plugin. Checks the manifest's shape early so authors see mistakes at import. */
export function definePlugin<Options>(manifest: PluginManifest<Options>): PluginManifest<Options> {
  if (!/^[a-z][a-z0-9-]*$/.test(manifest.id)) {
    throw new TypeError(`plugin id "${manifest.id}" must be lower-case letters, digits and dashes`);
  }
  if (typeof manifest.create !== 'function') {
    throw new TypeError(`plugin "${manifest.id}": create must be a class`);
  }
  return Object.freeze({ ...manifest });
}

/**
 * Throw from a stage to refuse a request with a client error (4xx) instead
 * of a fault: e.g. `new StageRejection(409, 'guest is running; start needs off')`.
 * Any other error thrown by a stage is reported as a failure of that stage.
 */
export class StageRejection extends Error {
  override readonly name = 'StageRejection';
  constructor(
    readonly status: 400 | 404 | 409 | 422 | 503,
    message: string,
  ) {
    super(message);
  }
}
