/**
 * What a move shows outside the state machine (docs/migration.md, "Hooks
 * for the edges"): the events `guest.migrating` and `guest.migrated` on
 * both agents (docs/events.md), the counters on /metrics
 * (core/metrics/migration-metrics.ts), and the source's moved-guest record,
 * whose change carries the source's `guest.migrated` so the record, the
 * event and the guest's removal land in one transaction.
 */
import { draft, type EventDraft, type MigrationEventData, type MigrationOutcome } from '../events/kernel-event.js';
import type { MovedGuests } from '../guests/moved-guests.js';
import { CANCELLED } from '../jobs/job-engine.js';
import type { AgentLogger } from '../logger.js';
import type { KeyChange, StateStore } from '../state/state-store.js';
import type { MigrationHooks, MoveInfo } from './migration-hooks.js';

/** The counters the hooks feed (core/metrics/migration-metrics.ts: MigrationMetrics). */
export interface MoveCounters {
  ended(role: 'source' | 'target', outcome: 'complete' | 'error' | 'cancelled'): void;
  completed(facts: { live: boolean; seconds: number; diskBytes: number; memoryBytes: number; downtimeMs?: number }): void;
}

export interface EdgeHookDeps {
  store: Pick<StateStore, 'record'>;
  moved: MovedGuests;
  metrics: MoveCounters;
  /** This agent's base URL (the source's own, in its events). */
  selfUrl(): string;
  log: AgentLogger;
}

/** What a running move has told so far (this process only: a move resolved after a restart has none). */
interface Seen {
  startedAt: number;
  copied?: { downtimeMs?: number; diskBytes: number; memoryBytes: number };
}

export function edgeHooks(deps: EdgeHookDeps): MigrationHooks {
  const seen = new Map<string, Seen>();
  const record = (event: EventDraft) =>
    deps.store.record(event).catch((error: unknown) => deps.log.warn({ event: event.type, guest: event.guest, err: (error as Error).message }, 'could not record a migration event'));
  const sourceData = (move: MoveInfo): MigrationEventData => ({
    migration: move.migrationId,
    role: 'source',
    source: deps.selfUrl(),
    target: move.target,
    ...(move.hostId ? { targetHost: move.hostId } : {}),
    live: move.live,
  });

  return {
    started(move) {
      seen.set(move.migrationId, { startedAt: performance.now() });
      void record(draft('guest.migrating', sourceData(move), move.guestId));
    },
    copied(move, facts) {
      const entry = seen.get(move.migrationId);
      if (entry) entry.copied = facts;
    },
    movedChanges(move) {
      const entry = seen.get(move.migrationId);
      const outcome: MigrationOutcome = {};
      if (entry) outcome.seconds = Math.round((performance.now() - entry.startedAt) / 10) / 100;
      if (entry?.copied?.downtimeMs !== undefined) outcome.downtimeMs = entry.copied.downtimeMs;
      if (entry?.copied) outcome.bytes = { disks: entry.copied.diskBytes, memory: entry.copied.memoryBytes };
      // A move completed by a restarted agent (its job gone) is counted here, having no `moved`.
      if (!entry) deps.metrics.ended('source', 'complete');
      const [write, ...rest] = deps.moved.change(move.guestId, { url: move.target, ...(move.hostId ? { hostId: move.hostId } : {}) });
      const withEvent: KeyChange = { ...write, event: () => draft('guest.migrated', { ...sourceData(move), ...outcome }, move.guestId) };
      return [withEvent, ...rest];
    },
    moved(move, seconds) {
      const copied = seen.get(move.migrationId)?.copied;
      seen.delete(move.migrationId);
      deps.metrics.completed({ live: move.live, seconds, diskBytes: copied?.diskBytes ?? 0, memoryBytes: copied?.memoryBytes ?? 0, downtimeMs: copied?.downtimeMs });
    },
    failed(move, reason) {
      seen.delete(move.migrationId);
      deps.metrics.ended('source', reason === CANCELLED ? 'cancelled' : 'error');
    },
    incoming(move) {
      void record(draft('guest.migrating', { migration: move.migrationId, role: 'target', source: move.source, target: deps.selfUrl(), live: move.live }, move.guestId));
    },
    arrived(move) {
      deps.metrics.ended('target', 'complete');
      void record(draft('guest.migrated', { migration: move.migrationId, role: 'target', source: move.source, target: deps.selfUrl(), live: move.live }, move.guestId));
    },
    dropped() {
      deps.metrics.ended('target', 'error');
    },
  };
}
