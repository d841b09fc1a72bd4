/**
 * Where the edges of a move attach (docs/migration.md, "Hooks for the
 * edges"): events (guest.migrating, guest.migrated), /metrics counters and
 * the source's moved-guest record (its 404 with Location). The state
 * machine calls these at fixed points; each is optional. `movedChanges`
 * land in the very transaction that removes the guest from the source's
 * registry, so the 404 with its Location exists exactly when the guest
 * is gone here.
 */
import type { KeyChange } from '../state/state-store.js';
import type { SourcePhase } from './migration-records.js';

export interface MoveInfo {
  migrationId: string;
  guestId: string;
  /** The target agent's base URL. */
  target: string;
  /** The fleet's id of the target, when the move named it so. */
  hostId?: string;
  live: boolean;
}

export interface MigrationHooks {
  /** The source's job started the move (phase `checking`). */
  started?(move: MoveInfo): void;
  /** The source entered a phase. */
  phase?(move: MoveInfo, phase: SourcePhase): void;
  /** Live: the RAM copy ended; QEMU's reported downtime (ms) and bytes sent in total. */
  copied?(move: MoveInfo, facts: { downtimeMs?: number; diskBytes: number; memoryBytes: number }): void;
  /** Changes that land with the guest's removal from the source (the moved-guest record). */
  movedChanges?(move: MoveInfo): KeyChange[];
  /** The guest runs (or is off) on the target and is gone here. */
  moved?(move: MoveInfo, seconds: number): void;
  /** The move was undone: the guest stays here. */
  failed?(move: MoveInfo, reason: string): void;
  /** Target side: an incoming copy was prepared (the move is under way here). */
  incoming?(move: MoveInfo & { source: string }): void;
  /** Target side: a guest arrived (committed here). */
  arrived?(move: MoveInfo & { source: string }): void;
  /** Target side: an uncommitted copy was dropped (the source aborted, a restart, a silent source). */
  dropped?(move: MoveInfo & { source: string }, reason: string): void;
}
