/**
 * A guest's newest jobs, live: read from GET /guests/{id}/jobs, read again
 * when the event stream says one of its jobs changed, and every
 * PROGRESS_POLL_MS while one is queued or running (the stage a running job
 * is in is no event; the job answer carries it). Nothing is polled while
 * every job has ended.
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { getJson, guestPath, messageOf, okResponse, type AgentRequest, type JobView, type SubscribeEvents } from './guest-client.js';

const PROGRESS_POLL_MS = 700;
/** Jobs shown: the newest. */
const SHOWN = 8;

export interface GuestJobs {
  jobs: JobView[];
  /** Why the list could not be read, if so. */
  problem?: string;
  /** Read the list now (after the page queued a job). */
  refresh: () => void;
  /** DELETE /jobs/{id}: cancels a queued or running job (a move until its switch-over); rejects with the agent's reason. */
  cancel: (jobId: string) => Promise<void>;
}

export const jobEnded = (job: JobView) => job.Status === 'Complete' || job.Status === 'Error';

export function useGuestJobs(guestId: string, request: AgentRequest, subscribe?: SubscribeEvents): GuestJobs {
  const [jobs, setJobs] = useState<JobView[]>([]);
  const [problem, setProblem] = useState<string>();
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    let stopped = false;
    getJson<JobView[]>(request, guestPath(guestId, '/jobs'))
      .then((list) => {
        if (stopped) return;
        setJobs(list.slice(0, SHOWN));
        setProblem(undefined);
      })
      .catch((error) => !stopped && setProblem(messageOf(error)));
    return () => {
      stopped = true;
    };
  }, [guestId, request, tick]);

  // While a job is going: read again soon, for its stage and its end.
  const going = jobs.some((job) => !jobEnded(job));
  useEffect(() => {
    if (!going) return;
    const timer = setTimeout(refresh, PROGRESS_POLL_MS);
    return () => clearTimeout(timer);
  }, [going, jobs, refresh]);

  useEffect(() => {
    if (!subscribe) return;
    return subscribe((event) => {
      if (event.guest === guestId && event.type.startsWith('job.')) refresh();
    });
  }, [guestId, subscribe, refresh]);

  const cancel = useCallback(
    async (jobId: string) => {
      try {
        await okResponse(request, 'DELETE', `/jobs/${encodeURIComponent(jobId)}`);
      } finally {
        refresh();
      }
    },
    [request, refresh],
  );

  return { jobs, problem, refresh, cancel };
}
