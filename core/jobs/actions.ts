/**
 * The actions the API knows. A config maps each to stages; the router maps
 * routes to these names and nothing else (it never names a plugin).
 */
import type { MetricsType } from '../contract/wire-types.js';
import { LIFECYCLE_ACTIONS, SNAPSHOT_ACTIONS, isLifecycleAction, isSnapshotAction, type LifecycleAction } from '../contract/lifecycle.js';

// The lifecycle actions live with the lifecycle table in the contract.
export { LIFECYCLE_ACTIONS, isLifecycleAction, type LifecycleAction } from '../contract/lifecycle.js';

/** Actions answered inside the request by exactly one metrics stage. */
export const METRICS_ACTIONS = { cpuMetrics: 'cpu', nicMetrics: 'nic', diskMetrics: 'disk' } as const satisfies Record<string, MetricsType>;
export type MetricsAction = keyof typeof METRICS_ACTIONS;

/**
 * Image actions (mistify's names). Fetch and delete have sync checks and a
 * job; list and get are answered in the request by one stage; upload (a
 * hyperkern addition) runs one stage in the request, fed the body stream.
 * A request for a "container" image runs the container variant.
 */
export const IMAGE_JOB_ACTIONS = ['fetchImage', 'deleteImage', 'containerFetchImage', 'containerDeleteImage'] as const;
export const IMAGE_QUERY_ACTIONS = ['listImages', 'getImage', 'containerListImages', 'containerGetImage'] as const;
export const IMAGE_UPLOAD_ACTIONS = ['uploadImage'] as const;
export type ImageJobAction = (typeof IMAGE_JOB_ACTIONS)[number];
export type ImageQueryAction = (typeof IMAGE_QUERY_ACTIONS)[number];
export type ImageUploadAction = (typeof IMAGE_UPLOAD_ACTIONS)[number];
export type ImageAction = ImageJobAction | ImageQueryAction | ImageUploadAction;

/** The action for an image request: the container variant for container images. */
export function imageActionFor<A extends 'fetchImage' | 'deleteImage' | 'listImages' | 'getImage'>(action: A, type: string): ImageAction {
  const guestType = prefixedGuestType(type);
  return actionNameFor(guestType, action) as ImageAction;
}

export function isImageJobAction(name: string): name is ImageJobAction {
  return (IMAGE_JOB_ACTIONS as readonly string[]).includes(name);
}
export function isImageQueryAction(name: string): name is ImageQueryAction {
  return (IMAGE_QUERY_ACTIONS as readonly string[]).includes(name);
}
export function isImageUploadAction(name: string): name is ImageUploadAction {
  return (IMAGE_UPLOAD_ACTIONS as readonly string[]).includes(name);
}

/**
 * Snapshot actions (mistify's names; the states they need are in the
 * contract's SNAPSHOT_LIFECYCLE). Create, delete and rollback have sync
 * stages and a job on the guest's queue; list and get one stage in the
 * request; download one stage answering a stream.
 */
export { SNAPSHOT_ACTIONS, SNAPSHOT_LIFECYCLE, isSnapshotAction, type SnapshotAction } from '../contract/lifecycle.js';
export const SNAPSHOT_JOB_ACTIONS = ['createSnapshot', 'deleteSnapshot', 'rollbackSnapshot'] as const;
export const SNAPSHOT_QUERY_ACTIONS = ['listSnapshots', 'getSnapshot'] as const;
export type SnapshotJobAction = (typeof SNAPSHOT_JOB_ACTIONS)[number];
export type SnapshotQueryAction = (typeof SNAPSHOT_QUERY_ACTIONS)[number];

export function isSnapshotJobAction(name: string): name is SnapshotJobAction {
  return (SNAPSHOT_JOB_ACTIONS as readonly string[]).includes(name);
}

/**
 * GET /guests/{id}/vnc: one `vnc` stage, run in the request, answers where
 * the guest's VNC server listens; the agent carries that stream to the
 * WebSocket client. A hyperkern addition (mistify had no such action).
 */
export const VNC_ACTION = 'vnc';

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
  // Older releases' container image names: a config uses these or the later (routed) ones.
  'listContainerImage', 'getContainerImage', 'deleteContainerImage', 'pullContainerImage',
  'listContainers', 'getContainer', 'createContainer', 'startContainer', 'stopContainer', 'deleteContainer',
] as const;

/**
 * Guests run the plain action plans, except those whose `type` has a prefix
 * here: as in mistify, a "container" guest's start runs `containerStart`.
 * Every other type mistify clients send ("", "vm", "kvm") is a virtual machine.
 */
export const GUEST_TYPE_PREFIXES = { container: 'container' } as const;
export type PrefixedGuestType = keyof typeof GUEST_TYPE_PREFIXES;
export const VM_GUEST_TYPES: readonly string[] = ['', 'vm', 'kvm'];

/** The prefixed guest type `type` names, if any; undefined for a VM type. */
export function prefixedGuestType(type: string): PrefixedGuestType | undefined {
  return Object.hasOwn(GUEST_TYPE_PREFIXES, type) ? (type as PrefixedGuestType) : undefined;
}

/** A config action name as guest type and plain action: "containerCpuMetrics" -> container, cpuMetrics. */
export function splitActionName(name: string): { guestType?: PrefixedGuestType; action: string } {
  for (const [guestType, prefix] of Object.entries(GUEST_TYPE_PREFIXES)) {
    const rest = name.slice(prefix.length);
    if (name.startsWith(prefix) && /^[A-Z]/.test(rest)) {
      const action = rest[0].toLowerCase() + rest.slice(1);
      if (isLifecycleAction(action) || isMetricsAction(action) || isSnapshotAction(action)) return { guestType: guestType as PrefixedGuestType, action };
    }
  }
  return { action: name };
}

/** The config name of `action` for guests of `guestType`: ("container", "start") -> "containerStart". */
export function actionNameFor(guestType: PrefixedGuestType | undefined, action: string): string {
  return guestType ? GUEST_TYPE_PREFIXES[guestType] + action[0].toUpperCase() + action.slice(1) : action;
}

export function isMetricsAction(name: string): name is MetricsAction {
  return Object.hasOwn(METRICS_ACTIONS, name);
}

/** Every action name a config may use, for error messages. */
export function validActionNames(): string[] {
  const plain = [...LIFECYCLE_ACTIONS, ...Object.keys(METRICS_ACTIONS)];
  const prefixed = Object.keys(GUEST_TYPE_PREFIXES).flatMap((t) => [...plain, ...SNAPSHOT_ACTIONS].map((a) => actionNameFor(t as PrefixedGuestType, a)));
  const images = [...IMAGE_JOB_ACTIONS, ...IMAGE_QUERY_ACTIONS, ...IMAGE_UPLOAD_ACTIONS];
  return [...plain, ...prefixed, ...images, ...SNAPSHOT_ACTIONS, VNC_ACTION, ...Object.keys(ACTION_ALIASES), ...UNROUTED_MISTIFY_ACTIONS];
}
