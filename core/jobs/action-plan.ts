/**
 * Resolves the action plans into stage handles, failing at boot (not at the
 * first request) when an action names a stage that no plugin provides, or a
 * stage of the wrong kind. Each plan is the config's `actions` entry when it
 * has one, else derived from what the plugins serve (derived-plans.ts).
 * Plain action names make the plans of virtual machines; `container`-prefixed
 * ones (containerStart...) those of container guests, as in mistify's
 * config files.
 */
import {
  ACTION_ALIASES,
  LIFECYCLE_ACTIONS,
  METRICS_ACTIONS,
  UNROUTED_MISTIFY_ACTIONS,
  VNC_ACTION,
  actionNameFor,
  isImageJobAction,
  isImageQueryAction,
  isImageUploadAction,
  isLifecycleAction,
  isMetricsAction,
  isSnapshotAction,
  isSnapshotJobAction,
  splitActionName,
  validActionNames,
  type ImageAction,
  type LifecycleAction,
  type MetricsAction,
  type PrefixedGuestType,
  type SnapshotAction,
} from './actions.js';
import type { AgentConfig, StageRefConfig } from '../config/config.js';
import { canonicalActionName, deriveActions, type PluginStages } from './derived-plans.js';
import { Errors } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import type { StageKind } from '../contract/plugin-api.js';
import type { StageHandle } from '../plugins/stage-handle.js';
import type { PlannedStage } from '../plugins/stage-runner.js';

export interface LifecyclePlan {
  action: LifecycleAction;
  /** The name in the config (containerStart for a container's start). */
  configName: string;
  sync: PlannedStage[];
  async: PlannedStage[];
  /**
   * create only: its async stages without the boot at their end (the
   * start action's own stages), run when a client asks for a guest left
   * off (?start=false). Undefined when the create pipeline has no such boot.
   */
  asyncLeftOff?: PlannedStage[];
}

export interface MetricsPlan {
  action: MetricsAction;
  configName: string;
  stage: PlannedStage;
}

export interface PlanSet {
  lifecycle: Map<LifecycleAction, LifecyclePlan>;
  metrics: Map<MetricsAction, MetricsPlan>;
  /** Snapshot actions by plain name: a container's (containerCreateSnapshot) are of its root layer, not of disks. */
  snapshot: Map<SnapshotAction, SnapshotPlan>;
}

/**
 * An image action: fetch and delete have sync checks and a job (async);
 * list, get and upload have exactly one stage, run in the request (sync).
 */
export interface ImagePlan {
  action: ImageAction;
  sync: PlannedStage[];
  async: PlannedStage[];
}

/**
 * A snapshot action: create, delete and rollback have sync checks and a job
 * (async); list, get and download exactly one stage, run in the request.
 */
export interface SnapshotPlan {
  action: SnapshotAction;
  /** The name a config gives it: `createSnapshot`, or `containerCreateSnapshot` for containers. */
  configName: string;
  sync: PlannedStage[];
  async: PlannedStage[];
}

/** Plans of virtual machines, and per prefixed guest type (container) its own; image actions by name. */
export interface ActionPlans extends PlanSet {
  byType: Record<PrefixedGuestType, PlanSet>;
  image: Map<ImageAction, ImagePlan>;
  /** The one `vnc` stage (GET /guests/{id}/vnc), when configured. */
  vnc?: PlannedStage;
  /** By config action name: whether the config's `actions` gave the plan or the kernel derived it. */
  origins: Map<string, PlanOrigin>;
}

export type PlanOrigin = 'configured' | 'derived';

export function buildActionPlans(
  config: AgentConfig,
  file: string,
  catalogue: Map<string, StageHandle>,
  log: AgentLogger,
  plugins: PluginStages[],
): ActionPlans {
  const plans: ActionPlans = {
    lifecycle: new Map(),
    metrics: new Map(),
    byType: { container: { lifecycle: new Map(), metrics: new Map(), snapshot: new Map() } },
    image: new Map(),
    snapshot: new Map(),
    origins: new Map(),
  };
  const defaultTimeoutMs = config.jobs.stageTimeoutSeconds * 1000;
  const plan = (ref: StageRefConfig, where: string, kind: StageKind): PlannedStage => {
    const name = typeof ref === 'string' ? ref : ref.stage;
    const handle = catalogue.get(name);
    if (!handle) {
      const existing = [...catalogue.values()].filter((h) => h.kind === kind).map((h) => h.name);
      throw Errors.actionPlan(
        `${file}: ${where} names stage "${name}", which no configured plugin provides. ` +
          `${kind} stages that exist: ${existing.length ? existing.join(', ') : '(none: add a plugin to "plugins")'}`,
      );
    }
    if (handle.kind !== kind) {
      throw Errors.actionPlan(`${file}: ${where} names "${name}", a ${handle.kind} stage, where a ${kind} stage is needed`);
    }
    return {
      handle,
      args: typeof ref === 'string' ? {} : (ref.args ?? {}),
      timeoutMs: typeof ref === 'string' || ref.timeout === undefined ? defaultTimeoutMs : ref.timeout * 1000,
    };
  };

  // The config's entries first (in its order), then those derived for every other action a plugin serves.
  const configured = new Set(Object.keys(config.actions).map(canonicalActionName));
  const entries: Array<[string, AgentConfig['actions'][string], PlanOrigin]> = [
    ...Object.entries(config.actions).map(([name, action]): [string, AgentConfig['actions'][string], PlanOrigin] => [name, action, 'configured']),
    ...deriveActions(plugins, configured, file).map((d): [string, AgentConfig['actions'][string], PlanOrigin] => [d.action, { sync: d.sync, async: d.async }, 'derived']),
  ];
  for (const [configName, action, origin] of entries) {
    const where = origin === 'configured' ? `actions.${configName}` : `the derived plan of ${configName}`;
    if ((UNROUTED_MISTIFY_ACTIONS as readonly string[]).includes(configName)) {
      log.warn({ action: configName, file }, `action "${configName}" is a mistify-agent action hyperkern has no route for yet; its stages are ignored`);
      continue;
    }
    if (isImageJobAction(configName) || isImageQueryAction(configName) || isImageUploadAction(configName)) {
      plans.image.set(configName, imagePlan(configName, action, where));
      plans.origins.set(configName, origin);
      continue;
    }
    if (configName === VNC_ACTION) {
      const refs = [...(action.stages ?? []), ...action.async];
      if (refs.length !== 1 || action.sync.length > 0) {
        throw Errors.actionPlan(`${file}: ${where} takes exactly one stage, as "stages": ["plugin.vnc"]; got ${refs.length + action.sync.length}`);
      }
      plans.vnc = plan(refs[0], `${where}.stages[0]`, 'vnc');
      plans.origins.set(configName, origin);
      continue;
    }
    const { guestType, action: plain } = splitActionName(configName);
    const name = ACTION_ALIASES[plain] ?? plain;
    const set = guestType ? plans.byType[guestType] : plans;
    plans.origins.set(actionNameFor(guestType, name), origin);
    if (isSnapshotAction(name)) {
      set.snapshot.set(name, snapshotPlan(name, actionNameFor(guestType, name), action, where));
    } else if (isLifecycleAction(name)) {
      if (set.lifecycle.has(name)) throw Errors.actionPlan(`${file}: ${where}: action "${name}" is configured twice (once under an alias)`);
      const asyncRefs = [...action.async, ...(action.stages ?? [])];
      set.lifecycle.set(name, {
        action: name,
        configName: actionNameFor(guestType, name),
        sync: action.sync.map((ref, i) => plan(ref, `${where}.sync[${i}]`, 'action')),
        async: asyncRefs.map((ref, i) => plan(ref, `${where}.async[${i}]`, 'action')),
      });
    } else if (isMetricsAction(name)) {
      const refs = [...(action.stages ?? []), ...action.async];
      if (refs.length !== 1 || action.sync.length > 0) {
        throw Errors.actionPlan(`${file}: ${where}: a metrics action takes exactly one stage, as "stages": ["plugin.stage"]; got ${refs.length + action.sync.length}`);
      }
      set.metrics.set(name, { action: name, configName: actionNameFor(guestType, name), stage: plan(refs[0], `${where}.stages[0]`, 'metrics') });
    } else {
      throw Errors.actionPlan(`${file}: ${where}: unknown action "${configName}". Valid actions: ${validActionNames().join(', ')}`);
    }
  }

  function imagePlan(name: ImageAction, action: AgentConfig['actions'][string], where: string): ImagePlan {
    if (isImageJobAction(name)) {
      const asyncRefs = [...action.async, ...(action.stages ?? [])];
      return {
        action: name,
        sync: action.sync.map((ref, i) => plan(ref, `${where}.sync[${i}]`, 'image')),
        async: asyncRefs.map((ref, i) => plan(ref, `${where}.async[${i}]`, 'image')),
      };
    }
    const refs = [...(action.stages ?? []), ...action.async];
    if (refs.length !== 1 || action.sync.length > 0) {
      throw Errors.actionPlan(`${file}: ${where}: ${name} takes exactly one stage, as "stages": ["plugin.stage"]; got ${refs.length + action.sync.length}`);
    }
    return { action: name, sync: [plan(refs[0], `${where}.stages[0]`, isImageUploadAction(name) ? 'imageUpload' : 'image')], async: [] };
  }

  function snapshotPlan(name: SnapshotAction, configName: string, action: AgentConfig['actions'][string], where: string): SnapshotPlan {
    if (isSnapshotJobAction(name)) {
      const asyncRefs = [...action.async, ...(action.stages ?? [])];
      return {
        action: name,
        configName,
        sync: action.sync.map((ref, i) => plan(ref, `${where}.sync[${i}]`, 'snapshot')),
        async: asyncRefs.map((ref, i) => plan(ref, `${where}.async[${i}]`, 'snapshot')),
      };
    }
    const refs = [...(action.stages ?? []), ...action.async];
    if (refs.length !== 1 || action.sync.length > 0) {
      throw Errors.actionPlan(`${file}: ${where}: ${name} takes exactly one stage, as "stages": ["plugin.stage"]; got ${refs.length + action.sync.length}`);
    }
    return { action: name, configName, sync: [plan(refs[0], `${where}.stages[0]`, name === 'downloadSnapshot' ? 'snapshotDownload' : 'snapshot')], async: [] };
  }

  for (const set of [plans, ...Object.values(plans.byType)]) {
    bootAfterDerivedCreate(set, plans.origins);
    markBoot(set);
  }

  const unconfigured = [...LIFECYCLE_ACTIONS, ...Object.keys(METRICS_ACTIONS)].filter(
    (a) => !plans.lifecycle.has(a as LifecycleAction) && !plans.metrics.has(a as MetricsAction),
  );
  if (unconfigured.length) {
    log.warn({ actions: unconfigured, file }, `actions no configured plugin serves and the config does not map answer 501: ${unconfigured.join(', ')}`);
  }
  return plans;
}

/**
 * A derived create boots the guest, as the shipped configs always did and
 * mistify's Create does: it runs the start plan's stages after its own
 * (?start=false then stops before them: see markBoot).
 */
function bootAfterDerivedCreate(set: PlanSet, origins: Map<string, PlanOrigin>): void {
  const create = set.lifecycle.get('create');
  const start = set.lifecycle.get('start');
  if (!create || !start || origins.get(create.configName) !== 'derived' || start.async.length === 0) return;
  create.async = [...create.async, ...start.async];
}

/**
 * A create pipeline that ends with the start action's own stages boots the
 * guest, as mistify's Create does; without them is the guest left off.
 */
function markBoot(set: PlanSet): void {
  const create = set.lifecycle.get('create');
  const start = set.lifecycle.get('start');
  if (!create || !start || start.async.length === 0 || create.async.length <= start.async.length) return;
  const tail = create.async.slice(-start.async.length);
  if (tail.every((stage, i) => stage.handle === start.async[i].handle)) create.asyncLeftOff = create.async.slice(0, -start.async.length);
}
