/**
 * Metadata patches, as mistify defines them for host and guest metadata:
 * string values set a key; `null` or `""` removes it (a Go client holding a
 * map[string]string cannot send null, so `""` is how Go clients remove a
 * key); anything else is refused. A `null` body (a nil Go map) changes
 * nothing.
 */
import { z } from 'zod';
import { Errors } from '../errors.js';

export type MetadataPatch = Record<string, string | null>;

const MAX_KEYS = 1024;

/** PATCH /metadata and PATCH /guests/{id}/metadata bodies, for documentation and checks. */
export const metadataPatchSchema = z
  .record(z.string().min(1).max(256), z.string().max(65536).nullable())
  .nullable()
  .describe('keys to set (string values) or remove (null or "")');

/**
 * Set by the kernel on a guest whose create failed or was cut off by an
 * agent restart (state `error`): why. Removed when a later job on the
 * guest completes.
 */
export const CREATE_FAILURE_KEY = 'hyperkern.error';

/** Checks a request body is a metadata patch; the error says which key is wrong. */
export function parseMetadataPatch(body: unknown): MetadataPatch {
  if (body === null || body === undefined) return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw Errors.badRequest('metadata must be a JSON object of string keys to string values (null or "" removes a key)');
  }
  const entries = Object.entries(body as Record<string, unknown>);
  if (entries.length > MAX_KEYS) throw Errors.badRequest(`a metadata patch may set at most ${MAX_KEYS} keys; got ${entries.length}`);
  if (!metadataPatchSchema.safeParse(body).success) {
    // Find the first wrong entry to name it.
    for (const [key, value] of entries) {
      if (key.length === 0 || key.length > 256) throw Errors.badRequest(`metadata key "${key.slice(0, 64)}" must be 1 to 256 characters`);
      if (value !== null && typeof value !== 'string') {
        throw Errors.badRequest(`metadata value of "${key}" must be a string (null or "" removes it); got ${Array.isArray(value) ? 'array' : typeof value}`);
      }
      if (typeof value === 'string' && value.length > 65536) throw Errors.badRequest(`metadata value of "${key}" is longer than 65536 characters`);
    }
  }
  // "" is a removal on the wire; inside the agent a removal is null.
  return Object.fromEntries(entries.map(([key, value]) => [key, value === '' ? null : (value as string | null)]));
}

export interface MetadataLimits {
  /** Keys one guest (or the host) may hold. */
  keys: number;
  /** UTF-8 bytes of all its keys and values. */
  bytes: number;
}

/**
 * Throws 400 when `metadata` is beyond the limits: an unbounded guest made
 * every read of it (GET /guests answers all guests) and every PATCH of it
 * cost its whole size.
 */
export function checkMetadataLimits(metadata: Record<string, string>, limits: MetadataLimits, whose: string): void {
  let keys = 0;
  let bytes = 0;
  for (const [key, value] of Object.entries(metadata)) {
    keys++;
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (keys > limits.keys) throw Errors.badRequest(`${whose} metadata would hold ${keys} keys; at most ${limits.keys} are allowed (limits.metadataKeys)`);
  if (bytes > limits.bytes) throw Errors.badRequest(`${whose} metadata would hold ${bytes} bytes; at most ${limits.bytes} are allowed (limits.metadataBytes)`);
}

/** A new object: `current` with the patch applied. */
export function applyMetadataPatch(current: Record<string, string>, patch: MetadataPatch): Record<string, string> {
  const next = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  return next;
}

/**
 * What a stage changed in metadata (from `before` to `after`), as a patch,
 * so it can be applied onto metadata that clients changed meanwhile.
 */
export function metadataDiff(before: Record<string, string>, after: Record<string, string>): MetadataPatch {
  const patch: MetadataPatch = {};
  for (const [key, value] of Object.entries(after)) if (before[key] !== value) patch[key] = value;
  for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) patch[key] = null;
  return patch;
}
