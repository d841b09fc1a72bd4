/**
 * The guest's newest jobs (lifecycle and snapshot jobs share its queue):
 * each with its status, the stage a running one is in, a queued one's
 * place, and a failed one's message. A polite live region, so a screen
 * reader hears a job end without losing its place.
 */
import type { JobView } from './guest-client.js';
import type { GuestJobs } from './use-guest-jobs.js';

function progressOf(job: JobView): string {
  switch (job.Status) {
    case 'Queued':
      return job.QueuePosition ? `queued, ${job.QueuePosition === 1 ? 'next' : `place ${job.QueuePosition}`}` : 'queued';
    case 'Running':
      return job.Stage ? `running: ${job.Stage}` : 'running';
    case 'Complete':
      return 'done';
    case 'Error':
      return `failed: ${job.Message || 'no message'}`;
  }
}

function timeOf(job: JobView): string {
  const at = new Date(job.UpdatedAt || job.QueuedAt);
  return Number.isNaN(at.getTime()) ? '' : at.toLocaleTimeString();
}

export function JobList({ jobs }: { jobs: GuestJobs }) {
  return (
    <section class="guest-jobs panel" aria-labelledby="guest-jobs-title">
      <h2 id="guest-jobs-title">Jobs</h2>
      {jobs.problem && <p class="error">Jobs could not be read: {jobs.problem}</p>}
      {jobs.jobs.length === 0 && !jobs.problem && <p class="muted">No jobs yet.</p>}
      <ol class="guest-job-list" aria-live="polite">
        {jobs.jobs.map((job) => (
          <li key={job.ID} data-job={job.ID} data-action={job.Action} data-status={job.Status} class={`job job-${job.Status}`}>
            <span class="job-action">{job.Action}</span> <span class="job-progress">{progressOf(job)}</span>
            {!['Complete', 'Error'].includes(job.Status) && <progress aria-label={`${job.Action} in progress`} />}{' '}
            <time class="job-time" dateTime={job.UpdatedAt}>
              {timeOf(job)}
            </time>
          </li>
        ))}
      </ol>
    </section>
  );
}
