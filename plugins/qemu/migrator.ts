/**
 * The QEMU backend's migration stage: its GuestMigrator, the source side
 * (migration-source.ts) and the target side (migration-target.ts) of
 * moving a guest between agents. The kernel runs the protocol between the
 * agents and decides who owns the guest (docs/migration.md).
 */
import type { Guest, GuestMigrator } from '../../core/contract/index.js';
import { MigrationSource, type SourceDeps } from './migration-source.js';
import { MigrationTarget, type TargetDeps } from './migration-target.js';

export interface MigratorDeps extends SourceDeps, TargetDeps {
  /** Removes a guest that now lives elsewhere: what the delete stage does. */
  removeGuest(guest: Guest): Promise<void>;
}

export function qemuMigrator(deps: MigratorDeps): GuestMigrator {
  const source = new MigrationSource(deps);
  const target = new MigrationTarget(deps);
  return {
    checkOutgoing: (guest, live) => source.checkOutgoing(guest, live),
    copyDisks: (guest, nbd, limits, progress, signal) => source.copyDisks(guest, nbd, limits, progress, signal),
    copyMemory: (guest, memory, limits, progress, signal) => source.copyMemory(guest, memory, limits, progress, signal),
    finishOutgoing: (guest) => source.finishOutgoing(guest),
    abortOutgoing: (guest, wasRunning) => source.abortOutgoing(guest, wasRunning),
    readDisk: (guest, device) => source.readDisk(guest, device),
    removeOutgoing: (guest) => deps.removeGuest(guest),
    checkIncoming: (guest) => target.checkIncoming(guest),
    prepareIncoming: (guest, live, facts, listenHost) => target.prepareIncoming(guest, live, facts, listenHost),
    writeDisk: (guest, device, body) => target.writeDisk(guest, device, body),
    commitIncoming: (guest, live) => target.commitIncoming(guest, live),
    resumeIncoming: (guest) => target.resumeIncoming(guest),
    abortIncoming: (guest) => target.abortIncoming(guest),
  };
}
