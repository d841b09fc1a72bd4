/** The answer of a request that queued a guest job (create, an action, delete): 202 + job id, or with ?wait the job's outcome. */
import type { Context } from 'koa';
import type { Accepted } from '../jobs/action-runner.js';
import { Errors } from '../errors.js';
import type { Guest } from '../contract/wire-types.js';
import type { GuestRouteDeps } from './guest-routes.js';
import { answerJob } from './job-answer.js';

export function answerGuestJob(ctx: Context, deps: GuestRouteDeps, accepted: Accepted, waitMs: number): Promise<void> {
  const { registry, runner, jobs } = deps;
  return answerJob(ctx, jobs, {
    jobId: accepted.job.ID,
    waitMs,
    wait: (jobId, ms) => runner.waitForJob(jobId, ms),
    pending: () => (waitMs > 0 ? (registry.find(accepted.guest.id) ?? accepted.guest) : accepted.guest),
    done: (end) => end.guest ?? registry.find(accepted.guest.id) ?? accepted.guest,
  });
}

/** The guest, or 404. */
export function guestOr404(deps: Pick<GuestRouteDeps, 'registry'>, id: string): Guest {
  const guest = deps.registry.find(id);
  if (!guest) throw Errors.guestNotFound(id);
  return guest;
}
