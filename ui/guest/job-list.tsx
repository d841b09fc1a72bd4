/**
 * The guest's newest jobs (lifecycle, snapshot and migrate jobs share its
 * queue): each with its status, the stage a running one is in (a move: its
 * phase and the bytes sent and left, with a progress bar), a queued one's
 * place, and a failed one's message; a job that has not ended can be
 * cancelled (the agent says when it no longer can: a move past its
 * switch-over). A polite live region, so a screen
 * reader hears a job end without losing its place.
 */
import { useState } from 'preact/hooks';
import { messageOf, type JobView, type MigrationProgress } from './guest-client.js';
import { formatBytes } from './rates.js';
import { jobEnded, type GuestJobs } from './use-guest-jobs.js';

function moveProgress(move: MigrationProgress): string {
  const copy = move.bytesTotal > 0 ? `, ${formatBytes(move.bytesSent)} sent, ${formatBytes(move.bytesLeft)} left of ${formatBytes(move.bytesTotal)}` : '';
  return `moving to ${move.target}: ${move.phase}${copy}`;
}

function progressOf(job: JobView): string {
  switch (job.Status) {
    case 'Queued':
      return job.QueuePosition ? `queued, ${job.QueuePosition === 1 ? 'next' : `place ${job.QueuePosition}`}` : 'queued';
    case 'Running':
      if (job.Migration) return moveProgress(job.Migration);
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
  const [failure, setFailure] = useState<string>();
  const cancel = (job: JobView) => {
    setFailure(undefined);
    jobs.cancel(job.ID).catch((error) => setFailure(`Cancel ${job.Action}: ${messageOf(error)}`));
  };
  return (
    <section class="guest-jobs panel" aria-labelledby="guest-jobs-title">
      <h2 id="guest-jobs-title">Jobs</h2>
      {jobs.problem && <p class="error">Jobs could not be read: {jobs.problem}</p>}
      {jobs.jobs.length === 0 && !jobs.problem && <p class="muted">No jobs yet.</p>}
      <ol class="guest-job-list" aria-live="polite">
        {jobs.jobs.map((job) => (
          <li key={job.ID} data-job={job.ID} data-action={job.Action} data-status={job.Status} class={`job job-${job.Status}`}>
            <span class="job-action">{job.Action}</span> <span class="job-progress">{progressOf(job)}</span>
            {!jobEnded(job) &&
              (job.Migration && job.Migration.bytesTotal > 0 ? (
                <progress aria-label={`${job.Action}: ${job.Migration.phase}`} value={job.Migration.bytesTotal - job.Migration.bytesLeft} max={job.Migration.bytesTotal} />
              ) : (
                <progress aria-label={`${job.Action} in progress`} />
              ))}{' '}
            <time class="job-time" dateTime={job.UpdatedAt}>
              {timeOf(job)}
            </time>
            {!jobEnded(job) && (
              <>
                {' '}
                <button type="button" class="job-cancel" aria-label={`Cancel ${job.Action}`} onClick={() => cancel(job)}>
                  Cancel
                </button>
              </>
            )}
          </li>
        ))}
      </ol>
      {failure && (
        <p role="alert" class="error">
          {failure}
        </p>
      )}
    </section>
  );
}
