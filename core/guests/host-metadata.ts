/**
 * Hypervisor-level metadata (GET/PATCH /metadata). Held in memory; a patch
 * is applied to the committed metadata and becomes visible only once it is
 * durable, so concurrent PATCHes never lose each other's keys and a refused
 * one changes nothing.
 */
import { applyMetadataPatch, checkMetadataLimits, type MetadataLimits, type MetadataPatch } from './metadata.js';
import type { KeyChange, StateStore } from '../state/state-store.js';
import { draft } from '../events/kernel-event.js';

const KEY = 'host:metadata';

export class HostMetadata {
  private current: Record<string, string> = {};

  constructor(
    private readonly store: StateStore,
    private readonly limits: MetadataLimits = { keys: Infinity, bytes: Infinity },
  ) {}

  async load(): Promise<void> {
    this.current = (await this.store.get<Record<string, string>>(KEY)) ?? {};
  }

  get(): Record<string, string> {
    return this.current;
  }

  async patch(patch: MetadataPatch): Promise<Record<string, string>> {
    let result: Record<string, string> = this.current;
    const change: KeyChange<Record<string, string>> = {
      key: KEY,
      current: () => this.current,
      next: (current) => {
        result = applyMetadataPatch(current ?? {}, patch);
        checkMetadataLimits(result, this.limits, 'host');
        return result;
      },
      event: (metadata) => draft('host.metadata', { metadata: metadata ?? {} }),
      apply: (value) => (this.current = value ?? {}),
    };
    await this.store.change(change);
    return result;
  }
}
