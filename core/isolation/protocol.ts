/**
 * The wire between the kernel and an isolated plugin: MessagePack-RPC
 * (request `[0, msgid, method, params]`, response `[1, msgid, error,
 * result]`, notification `[2, method, params]`) on the child's stdin
 * (kernel → child) and stdout (child → kernel). docs/isolation-protocol.md
 * is the reference for authors of sub-agents in other languages; the names
 * and shapes here are that document's, in code.
 */
import { isStageKind as isContractStageKind, type PluginHealth, type StageKind, type StageRequest } from '../contract/plugin-api.js';

/** Bumped when a change would break an existing sub-agent. */
export const ISOLATION_PROTOCOL_VERSION = 1;

/** Requests the kernel sends to the child. */
export const ChildMethods = {
  hello: 'hello',
  init: 'init',
  start: 'start',
  stage: 'stage',
  health: 'health',
  ping: 'ping',
  stop: 'stop',
} as const;

/** Notifications the kernel sends to the child. */
export const ChildNotifications = {
  /** params `[msgid]`: the kernel gave up on that `stage` call (timeout, shutdown). */
  cancel: 'cancel',
} as const;

/**
 * Byte streams (docs/isolation-protocol.md "Streams"): the child sends
 * `data` (`[id, bin]`), `end` (`[id]`) and `error` (`[id, {message}]`); the
 * kernel sends `pull` (`[id, bytes]`: that many more may be sent) and
 * `cancel` (`[id]`: stop, the consumer went away).
 */
export const StreamNotifications = {
  data: 'stream.data',
  end: 'stream.end',
  error: 'stream.error',
  pull: 'stream.pull',
  cancel: 'stream.cancel',
} as const;

/** A streaming stage's answer: the stream's id, and its length in bytes when known. */
export interface StreamAnswer {
  stream: number;
  size?: number;
}

/** Bytes the kernel lets a stream have in flight (granted, not yet consumed). */
export const STREAM_WINDOW_BYTES = 1024 * 1024;
/** The largest `stream.data` chunk. */
export const STREAM_CHUNK_BYTES = 256 * 1024;

/** Requests the child may send to the kernel (the plugin's GuestDirectory). */
export const KernelMethods = {
  guestsList: 'guests.list',
  guestsGet: 'guests.get',
  guestsObserve: 'guests.observe',
} as const;

export interface HelloParams {
  protocol: number;
  /** For TypeScript plugins run by the built-in child: the module URL to import. */
  module?: string;
}

/** The child's manifest, as `hello` answers it. */
export interface HelloResult {
  protocol: number;
  id: string;
  version: string;
  pluginApi: number;
  description?: string;
  /** Short stage name → kind. May be empty when the stages depend on the options; `init` then names them. */
  stages: Record<string, StageKind>;
}

export interface InitParams {
  /** Instance id (stage prefix) from the config. */
  id: string;
  options: unknown;
  /** A directory the instance owns; it exists. */
  dataDir: string;
  logLevel: string;
}

export interface InitResult {
  /** The stages of this instance (with its options); omitted = those of `hello`. */
  stages?: Record<string, StageKind>;
}

export interface StageParams {
  /** Short stage name, e.g. `start`. */
  stage: string;
  /** A request of the stage's kind (GuestRequest, GuestMetricsRequest, ImageRequest, SnapshotStageRequest). */
  request: StageRequest;
  timeoutMs: number;
  jobId?: string;
}

/** What an error looks like on the wire; `status` 4xx keeps a refusal a client error. */
export interface WireError {
  message: string;
  status?: number;
}

export type HealthResult = PluginHealth;

/** Kinds a child may offer: every kind but imageUpload, whose request body is a stream into the child. */
export const ISOLATED_STAGE_KINDS = ['action', 'metrics', 'image', 'snapshot', 'snapshotDownload', 'vnc'] as const;

export function isStageKind(value: unknown): value is StageKind {
  return isContractStageKind(value) && (ISOLATED_STAGE_KINDS as readonly string[]).includes(value);
}

/** A `stages` map from the wire, or a description of what is wrong with it. */
export function checkStageMap(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `stages must be a map of stage name to a kind (${ISOLATED_STAGE_KINDS.join(', ')})`;
  for (const [name, kind] of Object.entries(value)) {
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name)) return `stage name "${name}" must start with a letter and hold only letters, digits, "_", "." and "-"`;
    if (kind === 'imageUpload') return `stage "${name}" is an imageUpload stage, which cannot run isolated (the upload body is a stream into the plugin); run the plugin in-process`;
    if (!isStageKind(kind)) return `stage "${name}" has kind ${JSON.stringify(kind)}; use one of ${ISOLATED_STAGE_KINDS.join(', ')}`;
  }
  return undefined;
}
