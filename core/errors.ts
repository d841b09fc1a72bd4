/**
 * The error catalogue: one entry per kind of failure the kernel reports on
 * purpose, with its stable code (HK_ERR_*), the HTTP status it maps to and
 * what it means. A HyperkernError is made from an entry, never from a free
 * code; the HTTP edge turns it into `{ message, code: status, error: code }`.
 * Anything else that reaches the edge is a fault: logged with its stack,
 * answered as HK_ERR_INTERNAL without one.
 */
import { basename } from 'node:path';

const CATALOGUE = {
  // Boot: the config file and the plugins it names.
  configUnreadable: { code: 'HK_ERR_CONFIG_UNREADABLE', status: 500, means: 'the config file cannot be read, is not JSON or not a JSON object' },
  config: { code: 'HK_ERR_CONFIG', status: 500, means: 'the config file fails validation (a key, a value, an unknown key)' },
  listenAddress: { code: 'HK_ERR_LISTEN_ADDRESS', status: 500, means: 'the listen address is not HOST:PORT, or it cannot be listened on (port in use, not an address of this host)' },
  pluginLoad: { code: 'HK_ERR_PLUGIN_LOAD', status: 500, means: 'a plugin module cannot be loaded or built, or its manifest is wrong' },
  pluginOptions: { code: 'HK_ERR_PLUGIN_OPTIONS', status: 500, means: "a plugin's options fail its schema" },
  pluginIdTaken: { code: 'HK_ERR_PLUGIN_ID_TAKEN', status: 500, means: 'two plugin entries use the same id' },
  pluginDependency: { code: 'HK_ERR_PLUGIN_DEPENDENCY', status: 500, means: 'a plugin depends on one the config lacks, or plugins depend on each other in a cycle' },
  isolationUnavailable: { code: 'HK_ERR_ISOLATION_UNAVAILABLE', status: 500, means: 'an entry asks for a child process in a build without isolation' },
  actionPlan: { code: 'HK_ERR_ACTION_PLAN', status: 500, means: "the config's actions name an unknown action, a missing stage or one of the wrong kind" },
  // Requests.
  badRequest: { code: 'HK_ERR_BAD_REQUEST', status: 400, means: 'the request is malformed or a value is invalid' },
  unauthorized: { code: 'HK_ERR_UNAUTHORIZED', status: 401, means: 'no or an unknown bearer token' },
  guestNotFound: { code: 'HK_ERR_GUEST_NOT_FOUND', status: 404, means: 'no guest with that id' },
  guestMoved: { code: 'HK_ERR_GUEST_MOVED', status: 404, means: 'the guest moved to another host (`movedTo` and the Location header say where)' },
  jobNotFound: { code: 'HK_ERR_JOB_NOT_FOUND', status: 404, means: 'no job with that id' },
  imageNotFound: { code: 'HK_ERR_IMAGE_NOT_FOUND', status: 404, means: 'no image with that id' },
  diskNotFound: { code: 'HK_ERR_DISK_NOT_FOUND', status: 404, means: 'the guest has no disk with that device name' },
  snapshotNotFound: { code: 'HK_ERR_SNAPSHOT_NOT_FOUND', status: 404, means: 'no snapshot with that name (of that guest or disk)' },
  routeNotFound: { code: 'HK_ERR_ROUTE_NOT_FOUND', status: 404, means: 'no such route' },
  methodNotAllowed: { code: 'HK_ERR_METHOD_NOT_ALLOWED', status: 405, means: 'the route exists, not with this method' },
  conflict: { code: 'HK_ERR_CONFLICT', status: 409, means: 'the request conflicts with the current state' },
  payloadTooLarge: { code: 'HK_ERR_PAYLOAD_TOO_LARGE', status: 413, means: 'the body is over the limit' },
  unsupportedMediaType: { code: 'HK_ERR_UNSUPPORTED_MEDIA_TYPE', status: 415, means: 'the body is not JSON' },
  upgradeRequired: { code: 'HK_ERR_UPGRADE_REQUIRED', status: 426, means: 'the route is a WebSocket and the request is not a (valid) WebSocket handshake' },
  /** Its status is the stage's own (400, 404, 409, 422, 503). */
  stageRejected: { code: 'HK_ERR_STAGE_REJECTED', status: 409, means: 'a stage refused the request (StageRejection)' },
  stageFailed: { code: 'HK_ERR_STAGE_FAILED', status: 502, means: 'a stage failed: a fault of the backend' },
  stageTimeout: { code: 'HK_ERR_STAGE_TIMEOUT', status: 504, means: 'a stage did not finish in its time' },
  displayUnreachable: { code: 'HK_ERR_DISPLAY_UNREACHABLE', status: 502, means: "the agent could not connect to the guest's VNC server where its backend said it listens" },
  actionNotConfigured: { code: 'HK_ERR_ACTION_NOT_CONFIGURED', status: 501, means: 'the action exists in the API but the config maps no stages to it' },
  consoleUnsupported: { code: 'HK_ERR_CONSOLE_UNSUPPORTED', status: 501, means: "the guest's backend offers no console (isolated plugins, JSON-RPC sub-agents)" },
  jobFailed: { code: 'HK_ERR_JOB_FAILED', status: 500, means: 'a job awaited with ?wait ended in Error' },
  shuttingDown: { code: 'HK_ERR_SHUTTING_DOWN', status: 503, means: 'the agent is stopping' },
  notReady: { code: 'HK_ERR_NOT_READY', status: 503, means: 'the agent listens but has not finished recovering its jobs' },
  dataDirLocked: { code: 'HK_ERR_DATA_DIR_LOCKED', status: 500, means: "another agent holds the data dir's lock (a boot error)" },
  dataDirUnusable: { code: 'HK_ERR_DATA_DIR_UNUSABLE', status: 500, means: 'the data dir is read-only, full or not writable by the agent (a boot error)' },
  storage: { code: 'HK_ERR_STORAGE', status: 500, means: 'the state database failed' },
  internal: { code: 'HK_ERR_INTERNAL', status: 500, means: 'a fault in the agent (logged with its stack)' },
} as const satisfies Record<string, { code: `HK_ERR_${string}`; status: number; means: string }>;

export type ErrorKind = keyof typeof CATALOGUE;
export type ErrorCode = (typeof CATALOGUE)[ErrorKind]['code'];

/** Every entry, for documentation and tests. */
export const ERROR_CATALOGUE: { readonly [K in ErrorKind]: { readonly code: ErrorCode; readonly status: number; readonly means: string } } = CATALOGUE;

export interface ErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class HyperkernError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: ErrorOptions & { status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HyperkernError';
    this.code = CATALOGUE[kind].code;
    this.status = options?.status ?? CATALOGUE[kind].status;
    this.details = options?.details;
  }
}

const make = (kind: ErrorKind) => (message: string, options?: ErrorOptions) => new HyperkernError(kind, message, options);

export const Errors = {
  configUnreadable: make('configUnreadable'),
  config: make('config'),
  listenAddress: make('listenAddress'),
  pluginLoad: make('pluginLoad'),
  pluginOptions: make('pluginOptions'),
  pluginIdTaken: make('pluginIdTaken'),
  pluginDependency: make('pluginDependency'),
  isolationUnavailable: make('isolationUnavailable'),
  actionPlan: make('actionPlan'),
  badRequest: make('badRequest'),
  unauthorized: make('unauthorized'),
  guestNotFound: (id: string) => new HyperkernError('guestNotFound', `no guest with id "${id}" on this host`),
  guestMoved: (to: { id: string; hostId?: string; url: string; movedAt: string }) =>
    new HyperkernError('guestMoved', `guest ${to.id} is no longer on this host: it moved to ${to.hostId ? `host ${to.hostId} (${to.url})` : to.url} at ${to.movedAt}; ask that agent (Location)`, {
      details: { movedTo: { ...(to.hostId ? { hostId: to.hostId } : {}), url: to.url, movedAt: to.movedAt } },
    }),
  jobNotFound: (id: string) => new HyperkernError('jobNotFound', `no job with id "${id}" (it may have been pruned from the bounded job history)`),
  imageNotFound: (id: string) => new HyperkernError('imageNotFound', `no image with id "${id}" on this host; GET /images lists them, POST /images fetches one`),
  diskNotFound: (guestId: string, disk: string, devices: string[]) =>
    new HyperkernError('diskNotFound', `guest ${guestId} has no disk "${disk}"; its disks are ${devices.length ? devices.join(', ') : '(none)'}`),
  snapshotNotFound: (name: string, of: string) => new HyperkernError('snapshotNotFound', `no snapshot "${name}" of ${of}; GET its snapshots to list them`),
  routeNotFound: make('routeNotFound'),
  methodNotAllowed: make('methodNotAllowed'),
  conflict: make('conflict'),
  payloadTooLarge: make('payloadTooLarge'),
  unsupportedMediaType: make('unsupportedMediaType'),
  upgradeRequired: make('upgradeRequired'),
  stageRejected: (status: number, message: string) => new HyperkernError('stageRejected', message, { status }),
  stageFailed: make('stageFailed'),
  stageTimeout: make('stageTimeout'),
  displayUnreachable: make('displayUnreachable'),
  actionNotConfigured: make('actionNotConfigured'),
  consoleUnsupported: make('consoleUnsupported'),
  jobFailed: make('jobFailed'),
  shuttingDown: make('shuttingDown'),
  notReady: make('notReady'),
  dataDirLocked: make('dataDirLocked'),
  dataDirUnusable: make('dataDirUnusable'),
  storage: make('storage'),
  internal: make('internal'),
};

/** Message of any thrown value, for logs and job messages. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * What a stage failure tells the client. A Node system error a plugin let
 * through (`ENOENT: no such file or directory, open '/var/lib/…'`) carries
 * host paths, which never leave the server: it is told by its code, call
 * and file name; the whole error stays in the agent's log (the cause).
 */
export function failureMessage(error: unknown): string {
  const system = error as NodeJS.ErrnoException;
  if (error instanceof Error && typeof system.code === 'string' && typeof system.syscall === 'string') {
    const file = typeof system.path === 'string' ? ` of ${basename(system.path)}` : '';
    return `${system.code} (${system.syscall}${file})`;
  }
  return messageOf(error);
}
