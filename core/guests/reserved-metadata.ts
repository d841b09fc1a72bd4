/**
 * Guest metadata keys that belong to the agent, not to clients: the kernel's
 * own (`hyperkern.*`) and those each plugin's manifest declares in
 * `ownedMetadata` (libvirt's `libvirt.domain` says which domain a guest is;
 * a client that could rewrite it could start or delete another guest's
 * domain). A client PATCH that sets or removes one is refused with 400
 * naming the key (sending its current value back unchanged is allowed, so a
 * client may PATCH what it read); a create body's values for them are
 * ignored, like the other agent-owned fields of a posted Guest.
 */
import { Errors } from '../errors.js';
import type { MetadataPatch } from './metadata.js';

/** Keys ending in "." are prefixes. */
export const KERNEL_METADATA_PREFIX = 'hyperkern.';

export class ReservedMetadata {
  private readonly exact = new Map<string, string>();
  private readonly prefixes: Array<[string, string]> = [[KERNEL_METADATA_PREFIX, 'the agent']];

  /** `owners`: plugin id -> the keys (or "prefix." patterns) it owns. */
  constructor(owners: Iterable<[string, readonly string[]]> = []) {
    for (const [owner, keys] of owners) {
      for (const key of keys) {
        if (key.endsWith('.')) this.prefixes.push([key, `plugin ${owner}`]);
        else this.exact.set(key, `plugin ${owner}`);
      }
    }
  }

  /** Who owns `key`, or undefined for a client key. */
  ownerOf(key: string): string | undefined {
    return this.exact.get(key) ?? this.prefixes.find(([prefix]) => key.startsWith(prefix))?.[1];
  }

  /** Throws 400 naming the first reserved key the patch would change. */
  checkPatch(current: Record<string, string>, patch: MetadataPatch): void {
    for (const [key, value] of Object.entries(patch)) {
      const owner = this.ownerOf(key);
      if (!owner) continue;
      const removes = value === null || value === '';
      if (removes ? !Object.hasOwn(current, key) : current[key] === value) continue;
      throw Errors.badRequest(`metadata key "${key}" belongs to ${owner} and cannot be set or removed by clients`);
    }
  }

  /** Client metadata of a new guest, without reserved keys. */
  clientOnly(metadata: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(metadata)) if (!this.ownerOf(key)) out[key] = value;
    return out;
  }
}
