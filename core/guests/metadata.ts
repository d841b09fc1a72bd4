/**
 * Metadata patches, as mistify defines them for host and guest metadata:
 * string values set a key, null removes it, anything else is refused.
 */
import { Errors } from '../errors.js';

export type MetadataPatch = Record<string, string | null>;

/** Checks a request body is a metadata patch; the error says which key is wrong. */
export function parseMetadataPatch(body: unknown): MetadataPatch {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw Errors.badRequest('metadata must be a JSON object of string keys to string values (or null to remove a key)');
  }
  const entries = Object.entries(body as Record<string, unknown>);
  if (entries.length > 1024) throw Errors.badRequest(`a metadata patch may set at most 1024 keys; got ${entries.length}`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > 256) throw Errors.badRequest(`metadata key "${key.slice(0, 64)}" must be 1 to 256 characters`);
    if (value !== null && typeof value !== 'string') {
      throw Errors.badRequest(`metadata value of "${key}" must be a string (or null to remove it); got ${Array.isArray(value) ? 'array' : typeof value}`);
    }
    if (typeof value === 'string' && value.length > 65536) throw Errors.badRequest(`metadata value of "${key}" is longer than 65536 characters`);
  }
  return body as MetadataPatch;
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
