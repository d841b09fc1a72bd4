/** Exit codes scripts can rely on (docs/cli.md). */
export const EXIT = {
  /** Done; with --wait the job completed. */
  ok: 0,
  /** The job failed, or the agent refused the request, or it could not be reached. */
  failed: 1,
  /** Bad command line. */
  usage: 2,
  /** --wait gave up before the job ended (the job goes on). */
  timedOut: 3,
} as const;
