/**
 * Resolves the config's `actions` into plans of stage handles, failing at
 * boot (not at the first request) when an action names a stage that no
 * plugin provides, or a stage of the wrong kind.
 */
import {
  ACTION_ALIASES,
  LIFECYCLE_ACTIONS,
  METRICS_ACTIONS,
  UNROUTED_MISTIFY_ACTIONS,
  isLifecycleAction,
  isMetricsAction,
  validActionNames,
  type LifecycleAction,
  type MetricsAction,
} from './actions.js';
import type { AgentConfig, StageRefConfig } from '../config/config.js';
import { Errors } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import type { StageKind } from '../contract/plugin-api.js';
import type { StageHandle } from '../plugins/stage-handle.js';
import type { PlannedStage } from '../plugins/stage-runner.js';

export interface LifecyclePlan {
  action: LifecycleAction;
  sync: PlannedStage[];
  async: PlannedStage[];
}

export interface MetricsPlan {
  action: MetricsAction;
  stage: PlannedStage;
}

export interface ActionPlans {
  lifecycle: Map<LifecycleAction, LifecyclePlan>;
  metrics: Map<MetricsAction, MetricsPlan>;
}

export function buildActionPlans(
  config: AgentConfig,
  file: string,
  catalogue: Map<string, StageHandle>,
  log: AgentLogger,
): ActionPlans {
  const plans: ActionPlans = { lifecycle: new Map(), metrics: new Map() };
  const defaultTimeoutMs = config.jobs.stageTimeoutSeconds * 1000;
  const plan = (ref: StageRefConfig, where: string, kind: StageKind): PlannedStage => {
    const name = typeof ref === 'string' ? ref : ref.stage;
    const handle = catalogue.get(name);
    if (!handle) {
      const existing = [...catalogue.values()].filter((h) => h.kind === kind).map((h) => h.name);
      throw Errors.config(
        `${file}: ${where} names stage "${name}", which no configured plugin provides. ` +
          `${kind} stages that exist: ${existing.length ? existing.join(', ') : '(none: add a plugin to "plugins")'}`,
      );
    }
    if (handle.kind !== kind) {
      throw Errors.config(`${file}: ${where} names "${name}", a ${handle.kind} stage, where a ${kind} stage is needed`);
    }
    return {
      handle,
      args: typeof ref === 'string' ? {} : (ref.args ?? {}),
      timeoutMs: typeof ref === 'string' || ref.timeout === undefined ? defaultTimeoutMs : ref.timeout * 1000,
    };
  };

  for (const [configName, action] of Object.entries(config.actions)) {
    const name = ACTION_ALIASES[configName] ?? configName;
    const where = `actions.${configName}`;
    if ((UNROUTED_MISTIFY_ACTIONS as readonly string[]).includes(name)) {
      log.warn({ action: configName, file }, `action "${configName}" is a mistify-agent action hyperkern has no route for yet; its stages are ignored`);
      continue;
    }
    if (isLifecycleAction(name)) {
      if (plans.lifecycle.has(name)) throw Errors.config(`${file}: ${where}: action "${name}" is configured twice (once under an alias)`);
      const asyncRefs = [...action.async, ...(action.stages ?? [])];
      plans.lifecycle.set(name, {
        action: name,
        sync: action.sync.map((ref, i) => plan(ref, `${where}.sync[${i}]`, 'action')),
        async: asyncRefs.map((ref, i) => plan(ref, `${where}.async[${i}]`, 'action')),
      });
    } else if (isMetricsAction(name)) {
      const refs = [...(action.stages ?? []), ...action.async];
      if (refs.length !== 1 || action.sync.length > 0) {
        throw Errors.config(`${file}: ${where}: a metrics action takes exactly one stage, as "stages": ["plugin.stage"]; got ${refs.length + action.sync.length}`);
      }
      plans.metrics.set(name, { action: name, stage: plan(refs[0], `${where}.stages[0]`, 'metrics') });
    } else {
      throw Errors.config(`${file}: ${where}: unknown action "${configName}". Valid actions: ${validActionNames().join(', ')}`);
    }
  }

  const unconfigured = [...LIFECYCLE_ACTIONS, ...Object.keys(METRICS_ACTIONS)].filter(
    (a) => !plans.lifecycle.has(a as LifecycleAction) && !plans.metrics.has(a as MetricsAction),
  );
  if (unconfigured.length) {
    log.warn({ actions: unconfigured, file }, `actions without stages in the config answer 501: ${unconfigured.join(', ')}`);
  }
  return plans;
}
