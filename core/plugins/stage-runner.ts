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
  const signal = new LazyStageSignal(run);
  let log: StageContext['log'] | undefined;
  const ctx: StageContext = {
    stage: name,
    // Made on first use, as the log: most stage calls (the simulator's
    // metrics reads) never look at it, and an AbortController with its
    // listeners on the shutdown and cancel signals is a measurable share of
    // a metrics request.
    get signal() {
      return signal.get();
    },
    timeoutMs,
    jobId: run.jobId,
    progress: run.progress,
    get log() {
      return (log ??= run.log.child({ stage: name }));
    },
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    // One promise settled by the stage or by its timeout, whichever is first.
    return await new Promise<R>((resolve, reject) => {
      timer = setTimeout(() => {
        const error = Errors.stageTimeout(`stage ${name} did not finish within ${timeoutMs / 1000} s`);
        signal.abort(error);
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
    signal.end();
  }
}

/**
 * A stage call's AbortSignal, made when the stage first asks for it. It
 * aborts on the call's timeout, on the agent's shutdown and on the job's
 * cancel, as an AbortController made up front and wired to both would: a
 * signal made after one of them fired is made aborted, with its reason.
 */
class LazyStageSignal {
  private controller?: AbortController;
  /** The call's own abort (its timeout) before the signal was made. */
  private reason?: unknown;
  private ended = false;
  /** A shutdown already under way when the call began does not abort it (the listener would not have fired). */
  private readonly shutdownAtStart: boolean;

  constructor(private readonly run: StageRun) {
    this.shutdownAtStart = run.shutdown?.aborted ?? false;
  }

  get(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = (this.controller = new AbortController());
    const { shutdown, cancel } = this.run;
    if (this.reason !== undefined) controller.abort(this.reason);
    else if (cancel?.aborted) controller.abort(cancel.reason ?? new Error('cancelled'));
    else if (shutdown?.aborted && !this.shutdownAtStart) controller.abort(new Error(SHUTTING_DOWN));
    else if (!this.ended) {
      shutdown?.addEventListener('abort', this, { once: true });
      cancel?.addEventListener('abort', this, { once: true });
    }
    return controller.signal;
  }

  abort(reason: unknown): void {
    if (this.controller) this.controller.abort(reason);
    else this.reason ??= reason;
  }

  /** The call returned: the signal no longer follows shutdown or cancel. */
  end(): void {
    this.ended = true;
    if (!this.controller) return;
    this.run.shutdown?.removeEventListener('abort', this);
    this.run.cancel?.removeEventListener('abort', this);
  }

  /** The listener on both signals (an object, so a call makes no closures for them). */
  handleEvent(event: Event): void {
    const { cancel } = this.run;
    if (cancel !== undefined && event.target === cancel) this.controller!.abort(cancel.reason ?? new Error('cancelled'));
    else this.controller!.abort(new Error(SHUTTING_DOWN));
  }
}

const SHUTTING_DOWN = 'agent is shutting down';
