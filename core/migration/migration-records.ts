/**
 * core/migration: moving a guest to another agent (docs/migration.md): the
 * source's job, the target's side of the protocol, the durable records of
 * both, and the resolution of a move cut off by a crash.
 * May import: contract, plugins, guests, jobs, state, events, errors, logger.
 *
 * The durable record of each move this agent takes part in, one per
 * migration id under `migration:<id>`, in the agent's state store. It is the
 * state machine's memory: a restarted agent resolves each record it finds
 * (outgoing.ts, incoming.ts). Changes are returned as KeyChanges so a phase
 * can land in one transaction with the registry change it goes with (the
 * target's commit registers the guest and marks the record together).
 */
import type { Guest } from '../contract/wire-types.js';
import type { KeyChange, StateStore } from '../state/state-store.js';

const PREFIX = 'migration:';

/** The source's phases, in order (docs/migration.md). */
export const SOURCE_PHASES = ['checking', 'preparing', 'disks', 'memory', 'switching', 'committed'] as const;
export type SourcePhase = (typeof SOURCE_PHASES)[number];
export type TargetPhase = 'preparing' | 'incoming' | 'committed';

export interface PeerAddress {
  url: string;
  /** The bearer token the other agent accepts; absent when it has no auth. */
  token?: string;
  /** The fleet's id of the other host, when the move named it so. */
  hostId?: string;
}

export interface SourceRecord {
  role: 'source';
  id: string;
  guestId: string;
  phase: SourcePhase;
  live: boolean;
  /** The guest ran when the move started: it runs again here if the move is undone. */
  wasRunning: boolean;
  target: PeerAddress;
  startedAt: string;
  /** Once `committed`: the guest as this host held it, for the removal of its copy (after a restart too). */
  guest?: Guest;
}

export interface TargetRecord {
  role: 'target';
  id: string;
  guestId: string;
  phase: TargetPhase;
  live: boolean;
  /** As this host holds it: after prepare, with its own files and devices; before, the source's with no devices. */
  guest: Guest;
  source: PeerAddress;
  /** When the source was last heard from (ms since the epoch), for the watchdog. */
  heardAt: number;
}

export type MigrationRecord = SourceRecord | TargetRecord;

export class MigrationRecords {
  private readonly records = new Map<string, MigrationRecord>();

  constructor(private readonly store: StateStore) {}

  async load(): Promise<void> {
    for (const [id, record] of await this.store.loadAll<MigrationRecord>(PREFIX)) this.records.set(id, record);
  }

  get(id: string): MigrationRecord | undefined {
    return this.records.get(id);
  }

  all(): MigrationRecord[] {
    return [...this.records.values()];
  }

  /**
   * The record of a move of this guest under way, either role. A target's
   * `committed` record is not one: the guest is this host's, and the record
   * only waits for the source's word that it is done (kept until then so a
   * source in doubt still learns the move happened); a source that never
   * says so must not keep the guest from moving on.
   */
  forGuest(guestId: string): MigrationRecord | undefined {
    return this.all().find((r) => r.guestId === guestId && !(r.role === 'target' && r.phase === 'committed'));
  }

  /** The change that sets record `id` to `next(current)` (undefined removes it). */
  change<R extends MigrationRecord>(id: string, next: (current: R | undefined) => R | undefined): KeyChange<R> {
    return {
      key: PREFIX + id,
      current: () => this.records.get(id) as R | undefined,
      next,
      apply: (value) => (value ? this.records.set(id, value) : this.records.delete(id)),
    };
  }

  async put(record: MigrationRecord): Promise<void> {
    await this.store.change(this.change(record.id, () => record));
  }

  async update<R extends MigrationRecord>(id: string, fields: Partial<R>): Promise<void> {
    await this.store.change(this.change<R>(id, (current) => current && { ...current, ...fields }));
  }

  async remove(id: string): Promise<void> {
    await this.store.change(this.change(id, () => undefined));
  }
}
