/**
 * The error catalogue. Every error the kernel raises on purpose is a
 * HyperkernError with a stable `code` (HK_ERR_*) and the HTTP status it maps
 * to; the HTTP edge turns it into `{ message, code: status, error: code }`.
 * Anything else that reaches the edge is a fault: logged with its stack,
 * answered as a 500 without one.
 */
export class HyperkernError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HyperkernError';
    this.details = options?.details;
  }
  readonly details?: Record<string, unknown>;
}

const make =
  (code: string, status: number) =>
  (message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) =>
    new HyperkernError(code, status, message, options);

export const Errors = {
  /** Config file unreadable, invalid, or inconsistent with the plugins. */
  config: make('HK_ERR_CONFIG', 500),
  /** A plugin module could not be loaded or its manifest is wrong. */
  pluginLoad: make('HK_ERR_PLUGIN_LOAD', 500),
  badRequest: make('HK_ERR_BAD_REQUEST', 400),
  unauthorized: make('HK_ERR_UNAUTHORIZED', 401),
  guestNotFound: (id: string) => new HyperkernError('HK_ERR_GUEST_NOT_FOUND', 404, `no guest with id "${id}" on this host`),
  jobNotFound: (id: string) => new HyperkernError('HK_ERR_JOB_NOT_FOUND', 404, `no job with id "${id}" (it may have been pruned from the bounded job history)`),
  imageNotFound: (id: string) => new HyperkernError('HK_ERR_IMAGE_NOT_FOUND', 404, `no image with id "${id}" on this host; GET /images lists them, POST /images fetches one`),
  routeNotFound: make('HK_ERR_ROUTE_NOT_FOUND', 404),
  methodNotAllowed: make('HK_ERR_METHOD_NOT_ALLOWED', 405),
  conflict: make('HK_ERR_CONFLICT', 409),
  payloadTooLarge: make('HK_ERR_PAYLOAD_TOO_LARGE', 413),
  /** A stage refused the request (sync stages only): status from the stage. */
  stageRejected: (status: number, message: string) => new HyperkernError('HK_ERR_STAGE_REJECTED', status, message),
  /** A stage failed or timed out: a fault of the backend. */
  stageFailed: make('HK_ERR_STAGE_FAILED', 502),
  stageTimeout: make('HK_ERR_STAGE_TIMEOUT', 504),
  /** The action exists in the API but no config maps it to stages. */
  actionNotConfigured: make('HK_ERR_ACTION_NOT_CONFIGURED', 501),
  /** A job awaited with ?wait ended in Error. */
  jobFailed: make('HK_ERR_JOB_FAILED', 500),
  shuttingDown: make('HK_ERR_SHUTTING_DOWN', 503),
  /** Between listening and the end of job recovery at start (milliseconds). */
  notReady: make('HK_ERR_NOT_READY', 503),
  /** Another agent holds the data dir's lock (a boot error). */
  dataDirLocked: make('HK_ERR_DATA_DIR_LOCKED', 500),
  storage: make('HK_ERR_STORAGE', 500),
};

/** Message of any thrown value, for logs and job messages. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
