/**
 * A create with a client-chosen id that already exists is a retry when it
 * asks for the same guest (answered 200 with it), and a conflict when it
 * asks for another one under the same id (409 naming the first field that
 * differs): answering 200 with the old guest would let a client believe it
 * got what it asked for. Compared are the fields a client chooses; what the
 * agent or the backend fills in (MACs left empty, disk sizes of images,
 * metadata changed by PATCHes since) is not.
 */
import type { Guest } from '../contract/wire-types.js';

export function createRetryDifference(asked: Guest, existing: Guest): string | undefined {
  for (const field of ['type', 'image', 'memory', 'cpu'] as const) {
    if (asked[field] !== existing[field]) return `${field} is ${JSON.stringify(existing[field])}, the retry asks for ${JSON.stringify(asked[field])}`;
  }
  if (asked.disks.length !== existing.disks.length) return `it has ${existing.disks.length} disks, the retry asks for ${asked.disks.length}`;
  for (const [i, disk] of asked.disks.entries()) {
    const had = existing.disks[i];
    if (disk.bus !== had.bus) return `disks.${i}.bus is "${had.bus}", the retry asks for "${disk.bus}"`;
    if (disk.image !== had.image) return `disks.${i}.image is "${had.image}", the retry asks for "${disk.image}"`;
    if (disk.size && disk.size !== had.size) return `disks.${i}.size is ${had.size}, the retry asks for ${disk.size}`;
  }
  if (asked.nics.length !== existing.nics.length) return `it has ${existing.nics.length} NICs, the retry asks for ${asked.nics.length}`;
  for (const [i, nic] of asked.nics.entries()) {
    const had = existing.nics[i];
    for (const field of ['name', 'network', 'model'] as const) {
      if (nic[field] !== had[field]) return `nics.${i}.${field} is "${had[field]}", the retry asks for "${nic[field]}"`;
    }
  }
  return undefined;
}
