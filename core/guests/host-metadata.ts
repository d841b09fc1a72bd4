/**
 * Hypervisor-level metadata (GET/PATCH /metadata). Held in memory, written
 * through to the state store; patches apply synchronously in memory so that
 * concurrent PATCHes never lose each other's keys.
 */
import { applyMetadataPatch, type MetadataPatch } from './metadata.js';
import type { StateStore } from '../state/state-store.js';
import { draft } from '../events/kernel-event.js';

const KEY = 'host:metadata';

export class HostMetadata {
  private current: Record<string, string> = {};

  constructor(private readonly store: StateStore) {}

  async load(): Promise<void> {
    this.current = (await this.store.get<Record<string, string>>(KEY)) ?? {};
  }

  get(): Record<string, string> {
    return this.current;
  }

  async patch(patch: MetadataPatch): Promise<Record<string, string>> {
    this.current = applyMetadataPatch(this.current, patch);
    const snapshot = this.current;
    await this.store.put(KEY, snapshot, draft('host.metadata', { metadata: snapshot }));
    return snapshot;
  }
}
