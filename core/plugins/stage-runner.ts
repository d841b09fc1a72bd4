/**
 * Runs one stage with its timeout. On timeout the stage's AbortSignal fires
 * (so a well-behaved plugin stops its work) and the caller gets an error
 * naming the stage; a stage that ignores the signal cannot hold the job.
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
  const timeoutMs = effectiveTimeoutMs(stage, args ?? ('args' in request ? request.args : {}));
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onShutdown = () => controller.abort(new Error('agent is shutting down'));
  const onCancel = () => controller.abort(run.cancel?.reason ?? new Error('cancelled'));
  run.shutdown?.addEventListener('abort', onShutdown, { once: true });
  if (run.cancel?.aborted) onCancel();
  run.cancel?.addEventListener('abort', onCancel, { once: true });
  let log: StageContext['log'] | undefined;
  const ctx: StageContext = {
    stage: stage.handle.name,
    signal: controller.signal,
    timeoutMs,
    jobId: run.jobId,
    progress: run.progress,
    // Made on first use: most stage calls (metrics reads) never log, and a
    // child logger per call is a measurable share of a metrics request.
    get log() {
      return (log ??= run.log.child({ stage: stage.handle.name }));
    },
  };
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = Errors.stageTimeout(`stage ${stage.handle.name} did not finish within ${timeoutMs / 1000} s`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return (await Promise.race([stage.handle.call(request, ctx), timedOut])) as R;
  } catch (error) {
    if (error instanceof HyperkernError) throw error;
    if (StageRejection.is(error)) throw Errors.stageRejected(error.status, error.message);
    throw Errors.stageFailed(`stage ${stage.handle.name} failed: ${failureMessage(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
    run.shutdown?.removeEventListener('abort', onShutdown);
    run.cancel?.removeEventListener('abort', onCancel);
  }
}

