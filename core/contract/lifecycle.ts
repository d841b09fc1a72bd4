/**
 * The guest lifecycle, owned by the kernel: one state vocabulary every
 * backend reports in, and for each lifecycle action the states it may start
 * from and the state it leads to. The kernel checks an action's `from`
 * when the request arrives and again when its job starts; a config that
 * names `guard.requireState` with `args.states` for an action replaces
 * them (to narrow or widen them, explicitly). Backends return the `to`
 * state when they succeed. Error messages and the OpenAPI document describe
 * the states with `describeAllowedStates`, so they say what is enforced.
 */

/** Every state a guest can be in. */
export const GUEST_STATES = [
  /** Accepted; its create job has not finished. */
  'creating',
  /** Defined, not running, and not powered down by the guest itself. */
  'off',
  'running',
  /** Paused (vCPUs stopped, memory kept). */
  'suspended',
  /** Powered down by the guest (ACPI shutdown, `poweroff` inside). */
  'shutdown',
  /** The guest's kernel panicked or its emulator died under it. */
  'crashed',
  /** Its delete job runs. */
  'deleting',
  /** Gone (the answer of a delete stage; the kernel then removes the guest). */
  'deleted',
  /** The backend cannot tell or reach it, or an interrupted create left it half-made. */
  'error',
] as const;

export type GuestState = (typeof GUEST_STATES)[number];

export function isGuestState(value: unknown): value is GuestState {
  return typeof value === 'string' && (GUEST_STATES as readonly string[]).includes(value);
}

/** Actions with a synchronous part and a job on the guest's queue. */
export const LIFECYCLE_ACTIONS = ['create', 'delete', 'start', 'shutdown', 'reboot', 'restart', 'poweroff', 'suspend', 'resume'] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

export interface ActionLifecycle {
  /** States the action may start from (empty: the guest does not exist yet). */
  readonly from: readonly GuestState[];
  /** The state the guest shows while the action's job runs, if any. */
  readonly during?: GuestState;
  /** The state the action leads to when it succeeds. */
  readonly to: GuestState;
}

/** Every state a guest may be in once it exists. */
const EXISTING: readonly GuestState[] = ['off', 'running', 'suspended', 'shutdown', 'crashed', 'error'];

/** The lifecycle table. */
export const LIFECYCLE: { readonly [A in LifecycleAction]: ActionLifecycle } = {
  // The create stage leaves the guest off; shipped configs then run start in the same job.
  create: { from: [], during: 'creating', to: 'off' },
  // From error too: an interrupted create ends in error, and start (or delete) is how to go on.
  start: { from: ['off', 'shutdown', 'suspended', 'crashed', 'error'], to: 'running' },
  shutdown: { from: ['running'], to: 'shutdown' },
  reboot: { from: ['running'], to: 'running' },
  restart: { from: ['running', 'suspended'], to: 'running' },
  poweroff: { from: ['running', 'suspended', 'shutdown', 'crashed'], to: 'off' },
  suspend: { from: ['running'], to: 'suspended' },
  // Start resumes a suspended guest too (as mistify's does); resume refuses any other state.
  resume: { from: ['suspended'], to: 'running' },
  delete: { from: EXISTING, during: 'deleting', to: 'deleted' },
};

export function isLifecycleAction(name: string): name is LifecycleAction {
  return (LIFECYCLE_ACTIONS as readonly string[]).includes(name);
}

/**
 * Snapshot actions (mistify's names). Create, delete and rollback run as jobs
 * on the guest's queue, so they never interleave with its lifecycle jobs;
 * list, get and download are answered inside the request.
 */
export const SNAPSHOT_ACTIONS = ['createSnapshot', 'listSnapshots', 'getSnapshot', 'deleteSnapshot', 'rollbackSnapshot', 'downloadSnapshot'] as const;
export type SnapshotAction = (typeof SNAPSHOT_ACTIONS)[number];

export function isSnapshotAction(name: string): name is SnapshotAction {
  return (SNAPSHOT_ACTIONS as readonly string[]).includes(name);
}

/** Every state but the transient ones: a guest being created or deleted has no stable disks. */
const SETTLED: readonly GuestState[] = ['off', 'running', 'suspended', 'shutdown', 'crashed', 'error'];

/**
 * The states each snapshot action may start from; the kernel checks them
 * when the request arrives and again when the action's job starts (a start
 * queued ahead of a rollback changes the state in between).
 */
export const SNAPSHOT_LIFECYCLE: { readonly [A in SnapshotAction]: { readonly from: readonly GuestState[] } } = {
  // Running guests too: the backend takes the disks at one instant (docs/snapshots.md says what each captures).
  createSnapshot: { from: ['off', 'running', 'suspended', 'shutdown', 'crashed'] },
  listSnapshots: { from: SETTLED },
  getSnapshot: { from: SETTLED },
  deleteSnapshot: { from: SETTLED },
  // Rollback replaces the disks under the guest: never while its vCPUs may write to them.
  rollbackSnapshot: { from: ['off', 'shutdown', 'crashed'] },
  downloadSnapshot: { from: SETTLED },
};

/**
 * The states a guest may be moved to another agent from
 * (POST /guests/{id}/migrate, docs/migration.md): running moves live, off
 * and shutdown cold. The web console offers the move from the same table.
 */
export const MIGRATE_LIFECYCLE: { readonly from: readonly GuestState[] } = { from: ['running', 'off', 'shutdown'] };

/** States as words: "off", "running or suspended", "off, shutdown or crashed". */
export function describeStates(states: readonly string[]): string {
  if (states.length === 0) return '(no state)';
  return states.length === 1 ? states[0] : `${states.slice(0, -1).join(', ')} or ${states[states.length - 1]}`;
}

/** The states an action may start from by the tables above (create: none, the guest does not exist yet). */
export function allowedStates(action: LifecycleAction | SnapshotAction): readonly GuestState[] {
  return isLifecycleAction(action) ? LIFECYCLE[action].from : SNAPSHOT_LIFECYCLE[action].from;
}

/** What 409 answers and the OpenAPI document say an action needs: "off, shutdown, suspended, crashed or error". */
export function describeAllowedStates(action: LifecycleAction | SnapshotAction): string {
  return describeStates(allowedStates(action));
}
