/**
 * The actions the API knows. A config maps each to stages; the router maps
 * routes to these names and nothing else (it never names a plugin).
 */
import type { MetricsType } from '../contract/wire-types.js';

/** Actions with a synchronous part and a job on the guest's queue. */
export const LIFECYCLE_ACTIONS = ['create', 'delete', 'start', 'shutdown', 'reboot', 'restart', 'poweroff', 'suspend'] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

/** Actions answered inside the request by exactly one metrics stage. */
export const METRICS_ACTIONS = { cpuMetrics: 'cpu', nicMetrics: 'nic', diskMetrics: 'disk' } as const satisfies Record<string, MetricsType>;
export type MetricsAction = keyof typeof METRICS_ACTIONS;

/** Names mistify-agent used for the same actions. */
export const ACTION_ALIASES: Record<string, LifecycleAction> = { run: 'start' };

/**
 * Actions mistify-agent accepted that hyperkern has no route for yet: a
 * config naming them loads, with a warning, so existing configs keep working.
 * The union over mistify-agent's history (config/config.go ValidActions):
 * older releases named container actions `listContainers`..., later ones
 * `containerCreate`... (as its shipped cmd/mistify-agent/agent.json does).
 */
export const UNROUTED_MISTIFY_ACTIONS = [
  'listImages', 'getImage', 'deleteImage', 'fetchImage',
  'listSnapshots', 'getSnapshot', 'createSnapshot', 'deleteSnapshot', 'rollbackSnapshot', 'downloadSnapshot',
  'listContainerImage', 'getContainerImage', 'deleteContainerImage', 'pullContainerImage',
  'listContainers', 'getContainer', 'createContainer', 'startContainer', 'stopContainer', 'deleteContainer',
  'containerCreate', 'containerDelete', 'containerStart', 'containerReboot', 'containerRestart', 'containerPoweroff',
  'containerShutdown', 'containerListImages', 'containerGetImage', 'containerDeleteImage', 'containerFetchImage',
] as const;

export function isLifecycleAction(name: string): name is LifecycleAction {
  return (LIFECYCLE_ACTIONS as readonly string[]).includes(name);
}

export function isMetricsAction(name: string): name is MetricsAction {
  return Object.hasOwn(METRICS_ACTIONS, name);
}

/** Every action name a config may use, for error messages. */
export function validActionNames(): string[] {
  return [...LIFECYCLE_ACTIONS, ...Object.keys(METRICS_ACTIONS), ...Object.keys(ACTION_ALIASES), ...UNROUTED_MISTIFY_ACTIONS];
}
