/**
 * Runs one stage with its timeout. On timeout the stage's AbortSignal fires
 * (so a well-behaved plugin stops its work) and the caller gets an error
 * naming the stage; a stage that ignores the signal cannot hold the job.
 * Every stage call passes here (metrics reads of every backend too), so it
 * makes per call only what the call uses.
 */
import { setMaxListeners } from 'node:events';
import { Errors, failureMessage, HyperkernError } from '../errors.js';
import { StageRejection, type Logger, type StageContext } from '../contract/plugin-api.js';
import type { StageHandle } from './stage-handle.js';
import type { StageRequest } from '../contract/plugin-api.js';

export interface PlannedStage {
  handle: StageHandle;
  /** Config args of this stage in this action. */
  args: Record<string, unknown>;
  timeoutMs: number;
}

export interface StageRun {
  log: Logger;
  jobId?: string;
  /** Aborts every running stage (agent shutdown deadline). */
  shutdown?: AbortSignal;
  /** Aborts this one stage (its job was cancelled). */
  cancel?: AbortSignal;
  progress?: StageContext['progress'];
}

/** A request's timeout argument (seconds) lengthens the stage's own bound. */
export function effectiveTimeoutMs(stage: PlannedStage, args: Record<string, unknown>): number {
  const requested = Number(args.timeout);
  if (Number.isFinite(requested) && requested > 0) return Math.max(stage.timeoutMs, (requested + 5) * 1000);
  return stage.timeoutMs;
}

/**
 * The controller whose signal tells running stages that the agent stops.
 * Every stage call in flight (jobs and metrics reads alike) listens on it
 * until it ends, so its listener count follows the load: Node's warning at
 * 11 listeners would report a leak that is not one.
 */
export function stageShutdownController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

export async function runStage<R>(stage: PlannedStage, request: StageRequest, run: StageRun, args?: Record<string, unknown>): Promise<R> {
  const name = stage.handle.name;
  const timeoutMs = effectiveTimeoutMs(stage, args ?? ('args' in request ? request.args : {}));
  const ctx = new StageCallContext(name, timeoutMs, run);
  let timer: NodeJS.Timeout | undefined;
  try {
    // One promise settled by the stage or by its timeout, whichever is first.
    return await new Promise<R>((resolve, reject) => {
      timer = setTimeout(() => {
        const error = Errors.stageTimeout(`stage ${name} did not finish within ${timeoutMs / 1000} s`);
        StageCallContext.abort(ctx, error);
        reject(error);
      }, timeoutMs);
      stage.handle.call(request, ctx).then(resolve as (value: unknown) => void, reject);
    });
  } catch (error) {
    if (error instanceof HyperkernError) throw error;
    if (StageRejection.is(error)) throw Errors.stageRejected(error.status, error.message);
    throw Errors.stageFailed(`stage ${name} failed: ${failureMessage(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
    StageCallContext.end(ctx);
  }
}

/**
 * The StageContext of one call. Its signal and its child logger are made
 * when the stage first reads them: most stage calls (the simulator's metrics
 * reads) read neither, and an AbortController listening on the shutdown
 * and cancel signals, or a child logger, is a measurable share of a
 * metrics request.
 *
 * They are getters of this class, not getters of an object literal made
 * per call: V8 allocates a literal's accessor pairs in the old generation,
 * where they held the call's closures and everything those reach (the
 * request, the guest's answer) through young-generation collections, so the
 * context of every call was promoted and the old generation grew by about a
 * kilobyte per metrics request until a full collection.
 *
 * The signal aborts on the call's timeout, on the agent's shutdown and on
 * the job's cancel, as an AbortController made up front and wired to them
 * would: a signal made after one of them fired is made aborted, with its
 * reason.
 */
class StageCallContext implements StageContext {
  readonly jobId?: string;
  readonly progress?: StageContext['progress'];
  readonly #run: StageRun;
  #controller?: AbortController;
  #log?: Logger;
  /** The call's own abort (its timeout) before the signal was made. */
  #reason?: unknown;
  #ended = false;
  /** A shutdown already under way when the call began does not abort it (the listener would not have fired). */
  readonly #shutdownAtStart: boolean;
  #listeners?: { shutdown: () => void; cancel: () => void };

  constructor(
    readonly stage: string,
    readonly timeoutMs: number,
    run: StageRun,
  ) {
    this.jobId = run.jobId;
    this.progress = run.progress;
    this.#run = run;
    this.#shutdownAtStart = run.shutdown?.aborted ?? false;
  }

  get log(): Logger {
    return (this.#log ??= this.#run.log.child({ stage: this.stage }));
  }

  get signal(): AbortSignal {
    if (this.#controller) return this.#controller.signal;
    const controller = (this.#controller = new AbortController());
    const { shutdown, cancel } = this.#run;
    if (this.#reason !== undefined) controller.abort(this.#reason);
    else if (cancel?.aborted) controller.abort(cancel.reason ?? new Error('cancelled'));
    else if (shutdown?.aborted && !this.#shutdownAtStart) controller.abort(new Error(SHUTTING_DOWN));
    else if (!this.#ended) {
      this.#listeners = {
        shutdown: () => controller.abort(new Error(SHUTTING_DOWN)),
        cancel: () => controller.abort(cancel?.reason ?? new Error('cancelled')),
      };
      shutdown?.addEventListener('abort', this.#listeners.shutdown, { once: true });
      cancel?.addEventListener('abort', this.#listeners.cancel, { once: true });
    }
    return controller.signal;
  }

  // Static, so the stage's context has no methods of the runner's on it.

  /** The call's timeout: the signal, made now or later, aborts with `reason`. */
  static abort(ctx: StageCallContext, reason: unknown): void {
    if (ctx.#controller) ctx.#controller.abort(reason);
    else ctx.#reason ??= reason;
  }

  /** The call returned: the signal no longer follows shutdown or cancel. */
  static end(ctx: StageCallContext): void {
    ctx.#ended = true;
    const listeners = ctx.#listeners;
    if (!listeners) return;
    ctx.#listeners = undefined;
    ctx.#run.shutdown?.removeEventListener('abort', listeners.shutdown);
    ctx.#run.cancel?.removeEventListener('abort', listeners.cancel);
  }
}

const SHUTTING_DOWN = 'agent is shutting down';
