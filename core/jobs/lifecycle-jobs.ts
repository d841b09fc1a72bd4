/**
 * The executor of lifecycle jobs (create, start, shutdown... delete): the
 * async stages of the action's plan, each given the newest stored guest,
 * each result persisted before the next stage runs, so a crash mid-job
 * loses at most the stage that was running. The last stage's result is
 * committed in the job's own end (Complete) transaction, its event before
 * the job's: one commit fewer per job. A crash before that commit leaves
 * the job Running (interrupted at the next start) and the guest as before
 * its last stage, as a crash during that stage would; a job that ends
 * Error (cancelled meanwhile) records the last stage's result first.
 *
 * The lifecycle table (or the config's explicit override, see
 * guest-plans.ts) is checked again when the job starts: the guest's earlier
 * jobs ran since the request was checked, so a job whose guest is no longer
 * in a state its action may start from ends Error saying so.
 *
 * An action with a `during` state in the table shows it while its job
 * runs: create's guest is registered `creating`; a delete's guest shows
 * `deleting` from its job's start until it leaves the registry. The delete
 * stages are sent the guest in the state the backend last gave it (what
 * they knew, never `deleting`), and what they answer is kept as that state
 * while `deleting` stays shown. When such a job fails or is cancelled, the
 * guest goes back to the state the backend last answered (the one it had
 * before the job, if no stage answered one): a failed delete leaves the
 * guest as it was, and it can be deleted again. A create (failed, cancelled
 * or cut off by a restart) or a delete cut off by a restart leaves the
 * guest in `error` with the reason in metadata `hyperkern.error`, as
 * nothing knows how far it got; start and delete work from there.
 */
import type { LifecycleAction } from './actions.js';
import type { ActionPlans } from './action-plan.js';
import { checkLifecycleState, plansFor } from './guest-plans.js';
import { CANCELLED, INTERRUPTED, type JobExecutor, type JobResult, type JobRun } from './job-engine.js';
import { messageOf } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import { CREATE_FAILURE_KEY } from '../guests/metadata.js';
import type { KeyChange } from '../state/state-store.js';
import { LIFECYCLE, isLifecycleAction, type GuestState } from '../contract/lifecycle.js';
import type { Guest, GuestResponse, Job } from '../contract/wire-types.js';

export class LifecycleJobs implements JobExecutor {
  readonly kind = 'lifecycle';
  /** Jobs showing a `during` state: the state the backend last gave the guest (restored if the job fails). */
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly registry: GuestRegistry,
    private readonly plans: ActionPlans,
  ) {}

  handles(action: string): boolean {
    return isLifecycleAction(action);
  }

  async run({ job, args, log, cancel, shutdown, stage: runStage }: JobRun): Promise<JobResult> {
    const guestId = job.GuestID;
    const action = job.Action as LifecycleAction;
    const known = this.registry.find(guestId);
    if (!known) throw new Error(`guest ${guestId} no longer exists`);
    const plan = plansFor(this.plans, known).lifecycle.get(action);
    if (!plan) throw new Error(`action "${action}" is no longer configured`);
    try {
      checkLifecycleState(plan, known);
    } catch (error) {
      throw new Error(`${messageOf(error)} (checked again when the job started: the guest's earlier jobs ran since this one was queued)`);
    }
    const leftOff = action === 'create' && args.start === 'false' && plan.asyncLeftOff !== undefined;
    if (action === 'create' && args.start === 'false' && !leftOff) {
      // Nothing to leave out: the pipeline has no trailing start stages (docs/api.md). Said, not silent.
      log.info({ stages: plan.async.map((s) => s.handle.name) }, "start=false changes nothing: this config's create pipeline does not end with the start action's stages, so it runs as configured");
    }
    const stages = leftOff ? plan.asyncLeftOff! : plan.async;
    const during = action === 'create' ? undefined : LIFECYCLE[action].during;
    if (during) await this.show(job, known, during);
    let guest = this.registry.find(guestId) ?? known;
    let message = '';
    /** The last stage's answer: committed with the job's end (one transaction fewer per job), or alone before a throw. */
    let unsaved: { sent: Guest; returned: Guest } | undefined;
    for (const [index, stage] of stages.entries()) {
      if (cancel.aborted) break;
      // The newest guest, not the one the previous stage returned: a
      // metadata PATCH may have landed in between.
      const sent = this.sent(job, this.registry.find(guestId) ?? guest);
      let response: GuestResponse | void;
      try {
        response = await runStage<GuestResponse | void>(stage, { guest: sent, action, args: { ...stage.args, ...args } });
      } catch (error) {
        if (cancel.aborted || shutdown.aborted || !isForcedShutdown(action, args)) throw error;
        message = await this.forcePowerOff(job, args, runStage, messageOf(error), log);
        break;
      }
      if (response?.guest) {
        if (index === stages.length - 1) unsaved = { sent, returned: this.shown(job, response.guest) };
        else guest = await this.registry.applyStageResult(sent, this.shown(job, response.guest));
      }
      if (response?.message) message = response.message;
    }
    // A job that ends Error still records what its last stage did (a cancelled suspend that froze the guest).
    const saveBeforeThrow = async (): Promise<void> => {
      if (unsaved) await this.registry.applyStageResult(unsaved.sent, unsaved.returned);
    };
    if (cancel.aborted) {
      await saveBeforeThrow();
      throw new Error(CANCELLED);
    }
    const stored = this.registry.find(guestId);
    const last = this.sent(job, (unsaved && stored ? this.registry.stageResult(unsaved.sent, unsaved.returned)(stored) : stored) ?? guest);
    // Complete means the guest got where the client asked: a create that boots ends running.
    if (action === 'create' && plan.asyncLeftOff && !leftOff && last.state !== 'running') {
      await saveBeforeThrow();
      throw new Error(`the guest was created but is ${last.state || 'in no state'} after its boot, not running`);
    }
    // Kept until here for failed(), which runs after a throw.
    this.reported.delete(job.ID);
    // The last stage's result, the guest's last change and the job's end land together, each with its event, in this order.
    const lastStage = unsaved ? [this.registry.change(guestId, this.registry.stageResult(unsaved.sent, unsaved.returned))] : [];
    // A deleted guest is answered as its backend last gave it.
    if (action === 'delete') return { message, changes: [...lastStage, this.registry.change(guestId, () => undefined)], guest: last };
    return { message, changes: [...lastStage, this.registry.change(guestId, (current) => (current?.metadata?.[CREATE_FAILURE_KEY] === undefined ? current : { ...current, metadata: without(current.metadata, CREATE_FAILURE_KEY) }))] };
  }

  /**
   * A failed, cancelled or interrupted job. A create, or a job showing
   * `during` that was cut off by a restart, leaves the guest in `error`
   * with the reason; otherwise a guest still showing the job's `during`
   * state goes back to what the backend last said.
   */
  failed(job: Job, _args: Record<string, unknown>, reason: string, ran: boolean): KeyChange<Guest>[] {
    const reported = this.reported.get(job.ID);
    this.reported.delete(job.ID);
    if (!isLifecycleAction(job.Action)) return [];
    const during = LIFECYCLE[job.Action].during;
    if (job.Action === 'create' || (reason === INTERRUPTED && during)) {
      return [this.registry.change(job.GuestID, (current) => current && { ...current, state: 'error', metadata: { ...current.metadata, [CREATE_FAILURE_KEY]: reason } })];
    }
    if (!during || !ran || reported === undefined) return [];
    return [this.registry.change(job.GuestID, (current) => (current && current.state === during ? { ...current, state: reported as GuestState } : current))];
  }

  /** Commit the job's `during` state, remembering what the backend had said. */
  private async show(job: Job, guest: Guest, during: GuestState): Promise<void> {
    this.reported.set(job.ID, guest.state);
    await this.registry.update(job.GuestID, (current) => current && { ...current, state: during });
  }

  /** What a stage of the job is sent: the stored guest, in the state the backend last gave it while `during` shows. */
  private sent(job: Job, stored: Guest): Guest {
    const reported = this.reported.get(job.ID);
    return reported === undefined ? stored : { ...stored, state: reported as GuestState };
  }

  /** A stage's answer as it is stored: while `during` shows, the state it answered is remembered and `during` kept. */
  private shown(job: Job, returned: Guest): Guest {
    const reported = this.reported.get(job.ID);
    if (reported === undefined) return returned;
    this.reported.set(job.ID, returned.state);
    return { ...returned, state: LIFECYCLE[job.Action as LifecycleAction].during! };
  }

  /**
   * shutdown?force=true: the guest did not shut down (its stage failed or
   * timed out), so the poweroff action's job stages run in the same job.
   */
  private async forcePowerOff(job: Job, args: Record<string, unknown>, stage: JobRun['stage'], why: string, log: JobRun['log']): Promise<string> {
    const known = this.registry.find(job.GuestID);
    const plan = known ? plansFor(this.plans, known).lifecycle.get('poweroff') : undefined;
    if (!plan) throw new Error(`${why}; force=true needs a poweroff action in the config`);
    log.warn({ reason: why }, 'shutdown failed; forcing power off');
    for (const planned of plan.async) {
      const sent = this.registry.find(job.GuestID);
      if (!sent) throw new Error(`guest ${job.GuestID} no longer exists`);
      const response = await stage<GuestResponse | void>(planned, { guest: sent, action: 'poweroff', args: { ...planned.args, ...args } });
      if (response?.guest) await this.registry.applyStageResult(sent, response.guest);
    }
    return `forced: powered off after the shutdown did not complete (${why})`;
  }
}

function without(metadata: Record<string, string>, key: string): Record<string, string> {
  const { [key]: _removed, ...rest } = metadata;
  return rest;
}

/** `?force=true` on shutdown (the value is checked at the HTTP edge). */
export function isForcedShutdown(action: string, args: Record<string, unknown>): boolean {
  return action === 'shutdown' && (args.force === 'true' || args.force === '1' || args.force === '');
}
