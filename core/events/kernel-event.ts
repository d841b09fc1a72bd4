/**
 * What the kernel's change feed carries: one event per durable change.
 * Every event is written in the same SQLite transaction as the change it
 * reports, with an id that strictly increases in commit order, so a reader
 * that has seen id N has seen every change committed before it.
 */
import type { Guest, Job } from '../contract/wire-types.js';

export interface EventPayloads {
  /** A guest entered the registry (POST /guests). */
  'guest.created': { guest: Guest };
  /** A guest changed through the API or a job stage. */
  'guest.changed': { guest: Guest };
  /** A backend saw a guest change on its own (powered itself off, crashed). */
  'guest.observed': { guest: Guest; reason: string };
  'guest.deleted': { guestId: string };
  'job.queued': { job: Job };
  'job.started': { job: Job };
  'job.completed': { job: Job };
  'job.failed': { job: Job };
  'host.metadata': { metadata: Record<string, string> };
  'plugin.health': { plugin: string; healthy: boolean; message?: string };
  /** A viewer attached to the guest's console (GET /guests/{id}/console); `viewers` counts them now. */
  'console.attached': { viewer: string; viewers: number };
  /** A viewer left the console: closed it, was cut off as too slow, or the console ended. */
  'console.detached': { viewer: string; viewers: number; reason: string };
  /** The guest (re)booted while someone watched its console (its start, QEMU's RESET). */
  'console.reset': { reason: string };
  /** A move of the guest to another agent began: on the source when its job starts, on the target when it prepares its copy. */
  'guest.migrating': MigrationEventData;
  /** The move completed: on the source with the guest's removal (after its guest.deleted), on the target once the guest is registered there. */
  'guest.migrated': MigrationEventData & MigrationOutcome;
}

/** Which move, seen from which side (docs/migration.md). */
export interface MigrationEventData {
  migration: string;
  /** The side that wrote this event. */
  role: 'source' | 'target';
  /** The source agent's base URL (as the target knows it; the source's own listen URL). */
  source: string;
  /** The target agent's base URL. */
  target: string;
  /** The fleet's id of the target host, when the move named it. */
  targetHost?: string;
  /** RAM and device state moved with the disks while the guest ran. */
  live: boolean;
}

export interface MigrationOutcome {
  /** The whole move, from the source's job start (source only). */
  seconds?: number;
  /** The guest's downtime as the hypervisor reported it, ms (live moves, source only). */
  downtimeMs?: number;
  /** Bytes the source sent: disks and memory (source only). */
  bytes?: { disks: number; memory: number };
}

export type EventType = keyof EventPayloads;
export const EVENT_TYPES = [
  'guest.created',
  'guest.changed',
  'guest.observed',
  'guest.deleted',
  'job.queued',
  'job.started',
  'job.completed',
  'job.failed',
  'host.metadata',
  'plugin.health',
  'console.attached',
  'console.detached',
  'console.reset',
  'guest.migrating',
  'guest.migrated',
] as const satisfies readonly EventType[];

/** An event before it is committed: it gets its id and time in the transaction. */
export type EventDraft = {
  [T in EventType]: { type: T; /** the guest it concerns, for ?guest= */ guest?: string; data: EventPayloads[T] };
}[EventType];

export type KernelEvent = EventDraft & { id: number; time: string };

export function draft<T extends EventType>(type: T, data: EventPayloads[T], guest?: string): EventDraft {
  // No `guest` key at all when there is none: the stored JSON and the live object must match.
  return (guest === undefined ? { type, data } : { type, guest, data }) as EventDraft;
}
