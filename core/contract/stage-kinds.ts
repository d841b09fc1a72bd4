/**
 * Stage kinds: what a stage of each kind receives and answers, and the
 * shape checks the kernel applies to every call of that kind, in-process and
 * isolated alike. A new kind (say `image`) is one entry in
 * {@link StageKindShapes} and one in {@link STAGE_KINDS}; builders, the
 * loader, isolation and the action plans then know it.
 */
import type { Readable } from 'node:stream';
import type { Guest, GuestMetricsRequest, GuestMetricsResponse, GuestRequest, GuestResponse, ImageRequest, ImageResponse, SnapshotRequest, SnapshotResponse } from './wire-types.js';
import type { StageContext } from './plugin-api.js';
import type { SnapshotAction } from './lifecycle.js';
import { readGuestResponse, readImageResponse, readMetricsResponse, readSnapshotResponse } from './go-answers.js';
import { GoReadError } from './go-json.js';
import type { ConsoleRequest, GuestConsole } from './console.js';
import type { GuestMigrator, MigrationRequest } from './migration.js';

export type * from './console.js';
export type * from './migration.js';

/** Request and response type of each stage kind. */
export interface StageKindShapes {
  /** Lifecycle stages: a GuestRequest in, a GuestResponse (or nothing: no change) out. */
  action: { request: GuestRequest; response: GuestResponse | void };
  /** Metrics stages: a GuestMetricsRequest in, a GuestMetricsResponse out. */
  metrics: { request: GuestMetricsRequest; response: GuestMetricsResponse };
  /** Image stages (fetch, list, get, delete): an ImageRequest in, an ImageResponse out (no images = not found). */
  image: { request: ImageRequest; response: ImageResponse };
  /** Upload stages: the ImageRequest plus the body stream; in-process plugins only. */
  imageUpload: { request: ImageUploadRequest; response: ImageResponse };
  /** Snapshot stages (create, list, get, delete, rollback): a SnapshotStageRequest in, a SnapshotResponse out (no snapshots = not found). */
  snapshot: { request: SnapshotStageRequest; response: SnapshotResponse };
  /** Download stages: a SnapshotStageRequest (always naming a disk) in, a byte stream out. */
  snapshotDownload: { request: SnapshotStageRequest; response: SnapshotDownload };
  /** VNC stages: where a guest's VNC server listens (nothing: the guest has no display), for GET /guests/{id}/vnc. */
  vnc: { request: VncRequest; response: VncEndpoint | void };
  /** Console stages: a ConsoleRequest in, the guest's console (a live byte stream and its log) out; in-process plugins only. */
  console: { request: ConsoleRequest; response: GuestConsole };
  /** Migration stages: a MigrationRequest in, the backend's GuestMigrator out (docs/migration.md); in-process plugins only. */
  migration: { request: MigrationRequest; response: GuestMigrator };
}

/** What a VNC stage receives: the guest (running or suspended) and the stage's config args. */
export interface VncRequest {
  guest: Guest;
  args: Record<string, unknown>;
}

/**
 * Where the agent connects to reach a guest's VNC (RFB) server: a unix
 * socket (`path`, absolute) or a TCP address, which should be loopback: the
 * agent carries the stream to WebSocket clients with its own auth, so the
 * server itself need not be reachable from anywhere else. An isolated
 * plugin answers this as any other map: the kernel connects, not the plugin.
 */
export type VncEndpoint = { path: string } | { host: string; port: number };

/**
 * What a snapshot stage receives: mistify's SnapshotRequest plus the guest
 * and the disk it is about. `id` is the snapshot's name (for a create, the
 * new one's, as in `dest`); "" for a list.
 */
export interface SnapshotStageRequest extends SnapshotRequest {
  /** The guest, as the registry holds it now. */
  guest: Guest;
  /**
   * The disk's device name (`vda`), from the `/disks/{disk}/` routes. Absent:
   * guest-wide, every disk of the guest at one instant (`recursive` is true).
   */
  disk?: string;
  /** The stage's config args, with the request's query arguments over them. */
  args: Record<string, unknown>;
  /** The action this request is for, for a stage that serves several (a JSON-RPC bridge). */
  operation: SnapshotAction;
}

/**
 * A download stage's answer: the snapshot of one disk as a self-contained
 * image (a container's root layer as a tar), streamed. The kernel pipes
 * `stream` to the client with Content-Length when `size` (bytes) is given,
 * chunked otherwise; it destroys the stream when the client goes away.
 */
export interface SnapshotDownload {
  stream: Readable;
  /** Bytes the stream will yield; undefined when not known in advance. */
  size?: number;
  /** What the bytes are, for Content-Type and the file name's extension; qcow2 when not said. */
  format?: SnapshotDownloadFormat;
}

/** The formats a snapshot download may be in: a qcow2 disk image, or a tar of a container's layer. */
export type SnapshotDownloadFormat = 'qcow2' | 'tar';

/** An upload: the ImageRequest plus the request body, streamed (never buffered whole). */
export interface ImageUploadRequest extends ImageRequest {
  body: Readable;
  /** Content-Length of the body; undefined when chunked. */
  size?: number;
}

export type StageKind = keyof StageKindShapes;
export type StageRequestOf<K extends StageKind> = StageKindShapes[K]['request'];
export type StageResponseOf<K extends StageKind> = StageKindShapes[K]['response'];
/** A request or response of any kind, as the kernel passes them around. */
export type StageRequest = StageRequestOf<StageKind>;
export type StageResponse = StageResponseOf<StageKind>;

/** A stage handler of kind K. */
export type StageHandler<K extends StageKind> = (
  request: StageRequestOf<K>,
  ctx: StageContext,
) => Promise<StageResponseOf<K>> | StageResponseOf<K>;

/** The outcome of a shape check: the value, typed, or what is wrong with it. */
export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

/** The runtime half of a stage kind. */
export interface StageKindSpec<K extends StageKind> {
  /** Does this request have the kind's shape? (A wrong one is a kernel bug.) */
  isRequest(request: StageRequest): request is StageRequestOf<K>;
  /**
   * Checks what a stage answered and reads it as Go's encoding/json reads
   * the answer's type (go-answers.ts): absent fields are zero values.
   * `request`, when given, is what the stage was sent (a lifecycle answer's
   * guest keeps what the client gave where it left that out). `problem`
   * says what is wrong and what belongs there.
   */
  checkResponse(result: unknown, request?: StageRequestOf<K>): Checked<StageResponseOf<K>>;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** A short description of a value for messages: its type and a bounded preview. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (value instanceof Uint8Array) return `binary data (${value.length} bytes)`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'a map';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * A map read as Go reads type T, or the problem: `expected` says what
 * belongs there; a field Go could not read is named with its path.
 */
function readAnswer<T>(result: unknown, read: (answer: object) => T, expected: string): Checked<T> {
  if (!isMap(result)) return { ok: false, problem: `${describeValue(result)}; ${expected}` };
  try {
    return { ok: true, value: read(result) };
  } catch (error) {
    if (error instanceof GoReadError) return { ok: false, problem: `${error.message}; ${expected}` };
    throw error;
  }
}

/** An ImageResponse: `images` a list of Image maps (null or absent = none). */
function checkImageResponse(result: unknown): Checked<ImageResponse> {
  return readAnswer(result, readImageResponse, 'an image stage answers an ImageResponse map ({images: [{id, type, size, ...}]})');
}

/** A SnapshotResponse: `snapshots` a list of {id, size} maps (null or absent = none); no answer at all is none too. */
function checkSnapshotResponse(result: unknown): Checked<SnapshotResponse> {
  if (result === undefined) return { ok: true, value: { snapshots: [] } };
  return readAnswer(result, readSnapshotResponse, 'a snapshot stage answers a SnapshotResponse map ({snapshots: [{id, size}]})');
}

function checkSnapshotDownload(result: unknown): Checked<SnapshotDownload> {
  const stream = isMap(result) ? result.stream : undefined;
  const size = isMap(result) ? result.size : undefined;
  const isStream = typeof stream === 'object' && stream !== null && typeof (stream as Readable).pipe === 'function' && typeof (stream as Readable).on === 'function';
  const sizeOk = size === undefined || size === null || (typeof size === 'number' && Number.isSafeInteger(size) && size >= 0);
  const format = isMap(result) ? result.format : undefined;
  const formatOk = format === undefined || format === null || format === 'qcow2' || format === 'tar';
  if (isStream && sizeOk && formatOk) {
    return { ok: true, value: { stream: stream as Readable, ...(typeof size === 'number' ? { size } : {}), ...(format === 'qcow2' || format === 'tar' ? { format } : {}) } };
  }
  return { ok: false, problem: `${describeValue(result)}; a download stage answers {stream: Readable, size?: bytes, format?: 'qcow2' | 'tar'}` };
}

function checkGuestConsole(result: unknown): Checked<GuestConsole> {
  const c = isMap(result) ? result : {};
  const output = c.output as Readable | undefined;
  const isStream = typeof output === 'object' && output !== null && typeof output.on === 'function' && typeof output.destroy === 'function';
  const methods = ['write', 'readLog', 'close'].every((m) => typeof c[m] === 'function') && (c.onReset === undefined || typeof c.onReset === 'function');
  if (isStream && methods) return { ok: true, value: result as GuestConsole };
  return { ok: false, problem: `${describeValue(result)}; a console stage answers a GuestConsole {output: Readable, write(bytes), readLog(bytes), close(), onReset?(listener)}` };
}

const MIGRATOR_METHODS = ['checkOutgoing', 'copyDisks', 'copyMemory', 'finishOutgoing', 'abortOutgoing', 'readDisk', 'removeOutgoing', 'checkIncoming', 'prepareIncoming', 'writeDisk', 'commitIncoming', 'resumeIncoming', 'abortIncoming'];

function checkGuestMigrator(result: unknown): Checked<GuestMigrator> {
  if (isMap(result) && MIGRATOR_METHODS.every((m) => typeof result[m] === 'function')) return { ok: true, value: result as unknown as GuestMigrator };
  return { ok: false, problem: `${describeValue(result)}; a migration stage answers a GuestMigrator (${MIGRATOR_METHODS.join(', ')})` };
}

const isSnapshotRequest = (request: StageRequest): request is SnapshotStageRequest =>
  'guest' in request && 'destroyMoreRecent' in request && typeof (request as SnapshotStageRequest).id === 'string';

/** A VncEndpoint, or nothing (no display); anything else names what belongs there. */
function checkVncEndpoint(result: unknown): Checked<VncEndpoint | void> {
  if (result === undefined || result === null) return { ok: true, value: undefined };
  if (isMap(result) && typeof result.path === 'string' && result.path.startsWith('/') && !result.path.includes('\0')) return { ok: true, value: { path: result.path } };
  if (isMap(result) && typeof result.host === 'string' && result.host !== '' && Number.isInteger(result.port) && (result.port as number) > 0 && (result.port as number) < 65536) {
    return { ok: true, value: { host: result.host, port: result.port as number } };
  }
  return { ok: false, problem: `${describeValue(result)}; a vnc stage answers {path: "/absolute/unix/socket"}, {host, port: 1-65535}, or nil (no display)` };
}

const isImageRequest = (request: StageRequest): request is ImageRequest =>
  typeof (request as ImageRequest).id === 'string' && !('guest' in request);

/** Every stage kind the kernel knows, with its shape checks. */
export const STAGE_KINDS: { readonly [K in StageKind]: StageKindSpec<K> } = {
  action: {
    isRequest: (request): request is GuestRequest => 'action' in request && typeof request.action === 'string',
    checkResponse(result, request) {
      if (result === null || result === undefined) return { ok: true, value: undefined };
      return readAnswer(result, (answer) => readGuestResponse(answer, request?.guest), 'a lifecycle stage answers a GuestResponse map ({guest, message}) or nil');
    },
  },
  metrics: {
    isRequest: (request): request is GuestMetricsRequest => 'type' in request && typeof request.type === 'string',
    checkResponse: (result) => readAnswer(result, readMetricsResponse, 'a metrics stage answers a GuestMetricsResponse map'),
  },
  image: { isRequest: isImageRequest, checkResponse: checkImageResponse },
  imageUpload: {
    isRequest: (request): request is ImageUploadRequest => isImageRequest(request) && 'body' in request,
    checkResponse: checkImageResponse,
  },
  snapshot: { isRequest: isSnapshotRequest, checkResponse: checkSnapshotResponse },
  // A VM's download names its disk; a container's (its layer) names none.
  snapshotDownload: { isRequest: (request): request is SnapshotStageRequest => isSnapshotRequest(request) && (request.disk === undefined || typeof request.disk === 'string'), checkResponse: checkSnapshotDownload },
  vnc: {
    isRequest: (request): request is VncRequest => 'guest' in request && isMap(request.guest) && isMap(request.args) && !('action' in request) && !('type' in request) && !('destroyMoreRecent' in request),
    checkResponse: checkVncEndpoint,
  },
  console: {
    isRequest: (request): request is ConsoleRequest => 'purpose' in request && (request.purpose === 'view' || request.purpose === 'log') && 'guest' in request,
    checkResponse: checkGuestConsole,
  },
  migration: {
    isRequest: (request): request is MigrationRequest => 'migration' in request && request.migration === 'open',
    checkResponse: checkGuestMigrator,
  },
};

export function isStageKind(value: unknown): value is StageKind {
  return typeof value === 'string' && Object.hasOwn(STAGE_KINDS, value);
}

/**
 * A stage as the kernel holds it: its kind and one entry point that checks
 * the request and the answer against that kind. Made by {@link defineStage}
 * (or {@link actionStage}, {@link metricsStage}), never by hand.
 */
export interface Stage {
  readonly kind: StageKind;
  invoke(request: StageRequest, ctx: StageContext): Promise<StageResponse>;
  /**
   * The handler's answer as it is, unchecked: for the isolated child, which
   * sends it to the kernel, where it is checked (and blamed on the plugin).
   */
  invokeUnchecked(request: StageRequest, ctx: StageContext): Promise<unknown>;
}

/** Stages by short name (`start`, `cpuMetrics`). */
export type StageSet = Readonly<Record<string, Stage>>;

/** A stage of kind K from its handler: the handler's type is checked against the kind. */
export function defineStage<K extends StageKind>(kind: K, handler: StageHandler<K>): Stage {
  const spec: StageKindSpec<K> = STAGE_KINDS[kind];
  const call = async (request: StageRequest, ctx: StageContext): Promise<unknown> => {
    if (!spec.isRequest(request)) throw new Error(`the kernel passed ${ctx.stage} a request that is not a ${kind} request`);
    return handler(request, ctx);
  };
  return {
    kind,
    invokeUnchecked: call,
    async invoke(request, ctx) {
      const checked = spec.checkResponse(await call(request, ctx), request as StageRequestOf<K>);
      if (!checked.ok) throw new Error(`the stage answered ${checked.problem}`);
      return checked.value;
    },
  };
}

/** A lifecycle stage: `actionStage((request, ctx) => ({ guest: { ...request.guest, state: 'running' } }))`. */
export const actionStage = (handler: StageHandler<'action'>): Stage => defineStage('action', handler);
/** A metrics stage: `metricsStage(({ guest }) => ({ guest, type: 'cpu', cpu: [] }))`. */
export const metricsStage = (handler: StageHandler<'metrics'>): Stage => defineStage('metrics', handler);
/** An image stage: `imageStage(({ id }) => ({ images: [] }))`. */
export const imageStage = (handler: StageHandler<'image'>): Stage => defineStage('image', handler);
/** A snapshot stage: `snapshotStage(({ guest, disk }) => ({ snapshots: [] }))`. */
export const snapshotStage = (handler: StageHandler<'snapshot'>): Stage => defineStage('snapshot', handler);
/** A download stage: `snapshotDownloadStage(({ disk, id }) => ({ stream, size }))`. */
export const snapshotDownloadStage = (handler: StageHandler<'snapshotDownload'>): Stage => defineStage('snapshotDownload', handler);
/** A VNC stage: `vncStage(({ guest }) => ({ path: '/run/guest/vnc.sock' }))`. */
export const vncStage = (handler: StageHandler<'vnc'>): Stage => defineStage('vnc', handler);
/** A console stage: `consoleStage(({ guest, purpose }) => consoles.open(guest.id))` (docs/console.md). */
export const consoleStage = (handler: StageHandler<'console'>): Stage => defineStage('console', handler);
/** A migration stage: `migrationStage(() => migrator)` (docs/migration.md). */
export const migrationStage = (handler: StageHandler<'migration'>): Stage => defineStage('migration', handler);
