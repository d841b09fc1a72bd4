/**
 * Runs snapshot actions. Create, delete and rollback are jobs on the
 * guest's own queue (the job engine's, as an executor of their kind), so
 * they run in order with its start,
 * shutdown and delete; list, get and download are answered inside the
 * request. The kernel, not each backend, checks what every backend would:
 * the guest and disk exist, the guest's state allows the action (the
 * contract's SNAPSHOT_LIFECYCLE, again when the job starts), the name is
 * sound, a snapshot to act on exists (through getSnapshot) and no other job
 * of this guest is already changing that snapshot. A guest's type picks
 * the plans (a container's are `containerCreateSnapshot`...): a virtual
 * machine's snapshots are of its disks, a container's of its root layer
 * (it has no disks; its guest-wide download is that one layer).
 */
import { actionNameFor, isSnapshotJobAction, prefixedGuestType, SNAPSHOT_LIFECYCLE, type SnapshotAction, type SnapshotJobAction, type SnapshotQueryAction } from './actions.js';
import type { ActionPlans, SnapshotPlan } from './action-plan.js';
import { plansFor } from './guest-plans.js';
import type { JobEngine, JobResult, JobRun } from './job-engine.js';
import { Errors, HyperkernError } from '../errors.js';
import { describeStates } from '../contract/lifecycle.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import { isFinished, type JobLog } from './job-log.js';
import { asPluginLogger, type AgentLogger } from '../logger.js';
import type { PlannedStage } from '../plugins/stage-runner.js';
import type { SnapshotDownload, SnapshotStageRequest } from '../contract/plugin-api.js';
import type { Guest, Job, Snapshot, SnapshotRequest, SnapshotResponse } from '../contract/wire-types.js';

/** What a snapshot route is about: a guest, and one of its disks (by device) or all of them. */
export interface SnapshotTarget {
  guestId: string;
  /** Device name (vda); undefined = guest-wide. */
  disk?: string;
}

export interface AcceptedSnapshotJob {
  job: Job;
  /** The snapshot as known when the job was queued (size 0 for a create). */
  snapshot: Snapshot;
}

/** What a job stores to run later: the request without the guest (read fresh when the job starts). */
interface StoredSnapshotRequest extends SnapshotRequest {
  disk?: string;
}

/** Snapshot names: what qcow2, libvirt and ZFS all accept, and safe in a URL path and a file name. */
const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

export function checkSnapshotName(name: string, field: string): void {
  if (!SNAPSHOT_NAME.test(name) || name.includes('..')) {
    throw Errors.badRequest(`${field}: "${name.slice(0, 100)}" is not a snapshot name; use 1 to 80 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
}

export class SnapshotRunner {
  /** `guest/disk/name` -> id of the queued or running job changing that snapshot. */
  private readonly changing = new Map<string, string>();

  constructor(
    private readonly registry: GuestRegistry,
    private readonly jobs: JobLog,
    private readonly plans: ActionPlans,
    private readonly engine: JobEngine,
    private readonly log: AgentLogger,
  ) {
    engine.register({
      kind: 'snapshot',
      handles: isSnapshotJobAction,
      run: (run) => this.execute(run),
      // A queued job found at start: the snapshot it will change is claimed again.
      requeued: (job, args) => {
        const request = args.request as StoredSnapshotRequest | undefined;
        if (request) this.changing.set(keyOf({ guestId: job.GuestID, disk: request.disk }, request.id), job.ID);
      },
    });
  }

  async list(target: SnapshotTarget, args: Record<string, unknown>): Promise<Snapshot[]> {
    const guest = this.target('listSnapshots', target);
    return (await this.query('listSnapshots', guest, target, request(target, '', {}), args)).snapshots;
  }

  /** The snapshot, or a 404 naming it. */
  async get(target: SnapshotTarget, name: string, args: Record<string, unknown>): Promise<Snapshot> {
    checkSnapshotName(name, 'name');
    const guest = this.target('getSnapshot', target);
    const found = await this.find(guest, target, name, args);
    if (!found) throw Errors.snapshotNotFound(name, describeTarget(target));
    return found;
  }

  /** createSnapshot: `dest` "" names it snap-<unix seconds>. */
  async create(target: SnapshotTarget, body: SnapshotRequest, args: Record<string, unknown>): Promise<AcceptedSnapshotJob> {
    const name = body.dest || `snap-${Math.floor(Date.now() / 1000)}`;
    checkSnapshotName(name, 'dest');
    const guest = this.target('createSnapshot', target);
    if (hasDiskSnapshots(guest) && guest.disks.length === 0) throw Errors.conflict(`guest ${guest.id} has no disks to snapshot`);
    if (await this.find(guest, target, name, args)) throw Errors.conflict(`${describeTarget(target)} already has a snapshot "${name}"; pick another dest or delete it first`);
    return this.submit('createSnapshot', guest, target, request(target, name, { dest: name }), args, { id: name, size: 0 });
  }

  async remove(target: SnapshotTarget, name: string, args: Record<string, unknown>): Promise<AcceptedSnapshotJob> {
    return this.onExisting('deleteSnapshot', target, name, {}, args);
  }

  /** rollbackSnapshot: `destroyMoreRecent` also deletes the snapshots taken after it. */
  async rollback(target: SnapshotTarget, name: string, body: SnapshotRequest, args: Record<string, unknown>): Promise<AcceptedSnapshotJob> {
    return this.onExisting('rollbackSnapshot', target, name, { destroyMoreRecent: body.destroyMoreRecent }, args);
  }

  /**
   * downloadSnapshot: the stream of one disk's snapshot. A guest-wide
   * download is that of the guest's only disk; with several there is no one
   * image to send, so it is a 409 naming the disk routes.
   */
  async download(target: SnapshotTarget, name: string, args: Record<string, unknown>): Promise<SnapshotDownload> {
    const { guest, stage, disk } = await this.checkDownload(target, name, args);
    const stored = request(target, name, {});
    return this.engine.timedStage<SnapshotDownload>(stage, stageRequest('downloadSnapshot', guest, disk === undefined ? stored : { ...stored, disk }, stage, args), { log: asPluginLogger(this.log) }, args);
  }

  /**
   * What would refuse the download of `name` now (the guest's state, no
   * download stage, no such snapshot, a job changing it, a guest-wide
   * download of several disks), thrown; else the guest, the stage and the
   * disk to send. A download ticket is handed out only where this passes.
   */
  async checkDownload(target: SnapshotTarget, name: string, args: Record<string, unknown>): Promise<{ guest: Guest; stage: PlannedStage; snapshot: Snapshot; disk: string | undefined }> {
    checkSnapshotName(name, 'name');
    const guest = this.target('downloadSnapshot', target);
    const plan = this.plan('downloadSnapshot', guest);
    const snapshot = await this.find(guest, target, name, args);
    if (!snapshot) throw Errors.snapshotNotFound(name, describeTarget(target));
    this.refuseChanging(target, name, 'download');
    let disk = target.disk;
    if (disk === undefined && hasDiskSnapshots(guest)) {
      if (guest.disks.length !== 1) {
        throw Errors.conflict(
          `guest ${guest.id} has ${guest.disks.length} disks, so its snapshot "${name}" is ${guest.disks.length} images; download each from /guests/${guest.id}/disks/{disk}/snapshots/${name}/download (disks: ${guest.disks.map((d) => d.device).join(', ')})`,
        );
      }
      disk = guest.disks[0].device;
    }
    return { guest, stage: plan.sync[0], snapshot, disk };
  }

  /** delete and rollback: the snapshot must exist and no other job be changing it. */
  private async onExisting(action: 'deleteSnapshot' | 'rollbackSnapshot', target: SnapshotTarget, name: string, fields: Partial<SnapshotRequest>, args: Record<string, unknown>): Promise<AcceptedSnapshotJob> {
    checkSnapshotName(name, 'name');
    const guest = this.target(action, target);
    this.plan(action, guest);
    const found = await this.find(guest, target, name, args);
    if (!found) throw Errors.snapshotNotFound(name, describeTarget(target));
    return this.submit(action, guest, target, request(target, name, fields), args, found);
  }

  private async submit(action: SnapshotJobAction, guest: Guest, target: SnapshotTarget, stored: StoredSnapshotRequest, args: Record<string, unknown>, snapshot: Snapshot): Promise<AcceptedSnapshotJob> {
    const plan = this.plan(action, guest);
    this.engine.checkAccepting();
    this.refuseChanging(target, stored.id, action);
    const key = keyOf(target, stored.id);
    // Claimed before the first await: a concurrent request sees it.
    this.changing.set(key, '');
    try {
      for (const stage of plan.sync) {
        await this.engine.timedStage<SnapshotResponse>(stage, stageRequest(action, guest, stored, stage, args), { log: asPluginLogger(this.log) }, args);
      }
      const job = await this.engine.submit(guest.id, action, { ...args, request: stored });
      this.changing.set(key, job.ID);
      return { job, snapshot };
    } catch (error) {
      this.changing.delete(key);
      throw error;
    }
  }

  /** The job: the state is checked again (earlier jobs of the guest ran since), then the async stages. */
  private async execute(run: JobRun): Promise<JobResult> {
    const { job } = run;
    const { request: saved, ...args } = run.args;
    const requested = saved as StoredSnapshotRequest;
    const action = job.Action as SnapshotJobAction;
    const target: SnapshotTarget = { guestId: job.GuestID, disk: requested.disk };
    const key = keyOf(target, requested.id);
    try {
      const guest = this.registry.find(job.GuestID);
      if (!guest) throw new Error(`guest ${job.GuestID} no longer exists`);
      const plan = plansFor(this.plans, guest).snapshot.get(action);
      if (!plan) throw new Error(`action "${actionNameFor(prefixedGuestType(guest.type), action)}" is no longer configured`);
      checkState(action, guest);
      let last: Snapshot | undefined;
      for (const stage of plan.async) {
        const current = this.registry.find(job.GuestID) ?? guest;
        const response = await run.stage<SnapshotResponse>(stage, stageRequest(action, current, requested, stage, args), args);
        last = response.snapshots[0] ?? last;
      }
      const what = `${describeTarget(target)} snapshot "${requested.id}"`;
      if (action === 'createSnapshot') return { message: last ? `${what} taken (${last.size} MiB)` : `${what} taken` };
      if (action === 'deleteSnapshot') return { message: `${what} deleted` };
      return { message: `${what} rolled back to${requested.destroyMoreRecent ? ' (later snapshots destroyed)' : ''}` };
    } finally {
      if (this.changing.get(key) === job.ID) this.changing.delete(key);
    }
  }

  /** The guest, checked: it exists, has the disk named, and is in a state the action allows. */
  private target(action: SnapshotAction, target: SnapshotTarget): Guest {
    const guest = this.registry.find(target.guestId);
    if (!guest) throw Errors.guestNotFound(target.guestId);
    if (target.disk !== undefined && !guest.disks.some((d) => d.device === target.disk)) {
      throw Errors.diskNotFound(guest.id, target.disk, guest.disks.map((d) => d.device));
    }
    checkState(action, guest);
    return guest;
  }

  private async query(action: SnapshotQueryAction, guest: Guest, target: SnapshotTarget, stored: StoredSnapshotRequest, args: Record<string, unknown>): Promise<SnapshotResponse> {
    const stage = this.plan(action, guest).sync[0];
    return this.engine.timedStage<SnapshotResponse>(stage, stageRequest(action, guest, stored, stage, args), { log: asPluginLogger(this.log) }, args);
  }

  /** The snapshot through getSnapshot (or listSnapshots when only that is configured). */
  private async find(guest: Guest, target: SnapshotTarget, name: string, args: Record<string, unknown>): Promise<Snapshot | undefined> {
    const plans = plansFor(this.plans, guest).snapshot;
    const action: SnapshotQueryAction = plans.has('getSnapshot') || !plans.has('listSnapshots') ? 'getSnapshot' : 'listSnapshots';
    let snapshots: Snapshot[];
    try {
      ({ snapshots } = await this.query(action, guest, target, request(target, action === 'getSnapshot' ? name : '', {}), args));
    } catch (error) {
      // A backend that answers "no such snapshot" with a 404 rather than an empty list (a JSON-RPC sub-agent's error).
      if (error instanceof HyperkernError && error.kind === 'stageRejected' && error.status === 404) return undefined;
      throw error;
    }
    // By name only: a stage that ignores the id and answers another snapshot (or all) must not pass for this one.
    return snapshots.find((s) => s.id === name);
  }

  private refuseChanging(target: SnapshotTarget, name: string, what: string): void {
    const jobId = this.changing.get(keyOf(target, name));
    if (jobId === undefined) return;
    const job = jobId ? this.jobs.get(jobId) : undefined;
    // A job cancelled while queued ends without running: its claim ends with it.
    if (jobId && (!job || isFinished(job.Status))) {
      this.changing.delete(keyOf(target, name));
      return;
    }
    throw Errors.conflict(
      `${describeTarget(target)} snapshot "${name}" is being changed by ${job ? `a queued or running ${job.Action} (job ${job.ID})` : 'another request'}; ${what} it when that has ended`,
    );
  }

  /** The guest's plan of the action (by its type), or a 501 naming the action as the config would. */
  private plan(action: SnapshotAction, guest: Guest): SnapshotPlan {
    const plan = plansFor(this.plans, guest).snapshot.get(action);
    if (!plan) {
      const name = actionNameFor(prefixedGuestType(guest.type), action);
      throw Errors.actionNotConfigured(`this agent's config maps no stages to "${name}"; add actions.${name} to the config, or a plugin that serves it (docs/snapshots.md)`);
    }
    return plan;
  }
}

/** Whether the guest's snapshots are of its disks (virtual machines), not of a root layer (containers). */
function hasDiskSnapshots(guest: Guest): boolean {
  return prefixedGuestType(guest.type) === undefined;
}

function checkState(action: SnapshotAction, guest: Guest): void {
  const from = SNAPSHOT_LIFECYCLE[action].from;
  if (!from.includes(guest.state)) {
    throw Errors.conflict(`guest ${guest.id} is ${guest.state || 'in no state'}; ${action} needs it ${describeStates(from)}`);
  }
}

function request(target: SnapshotTarget, id: string, fields: Partial<SnapshotRequest>): StoredSnapshotRequest {
  return {
    id,
    dest: fields.dest ?? '',
    recursive: target.disk === undefined,
    destroyMoreRecent: fields.destroyMoreRecent ?? false,
    ...(target.disk !== undefined ? { disk: target.disk } : {}),
  };
}

/** A stage's request: the stored one, the guest as it is now, the stage's config args under the request's. */
function stageRequest(operation: SnapshotAction, guest: Guest, stored: StoredSnapshotRequest, stage: PlannedStage, args: Record<string, unknown>): SnapshotStageRequest {
  return { ...stored, guest, args: { ...stage.args, ...args }, operation };
}

function keyOf(target: SnapshotTarget, name: string): string {
  return `${target.guestId}/${target.disk ?? ''}/${name}`;
}

function describeTarget(target: SnapshotTarget): string {
  return target.disk === undefined ? `guest ${target.guestId}` : `disk ${target.disk} of guest ${target.guestId}`;
}
