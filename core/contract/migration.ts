/**
 * The migration stage kind's shapes: how a backend moves a guest between
 * agents (docs/migration.md). The kernel owns the protocol between the
 * agents, the durable records and who owns the guest when; the backend owns
 * what its hypervisor does on each side: copying disks and memory,
 * preparing an incoming copy, removing one. A migration stage answers the
 * backend's {@link GuestMigrator}; in-process plugins only (its streams and
 * callbacks do not cross the isolation protocol).
 */
import type { Readable } from 'node:stream';
import type { Guest } from './wire-types.js';

/** What a migration stage receives: nothing but its config args. */
export interface MigrationRequest {
  migration: 'open';
  args: Record<string, unknown>;
}

/** A TCP address the source's hypervisor connects to. */
export interface MigrationEndpoint {
  host: string;
  port: number;
}

/** Where the target takes a live guest's disks (NBD exports by device) and memory. */
export interface IncomingPlan {
  nbd?: MigrationEndpoint & { exports: Record<string, string> };
  memory?: MigrationEndpoint;
}

/** What the source side tells the target about a guest before it moves. */
export interface OutgoingFacts {
  /** Each disk's virtual size in bytes, by device. */
  diskBytes: Record<string, number>;
}

/** How a live copy may go: the guest's downtime bound and a bandwidth cap. */
export interface CopyLimits {
  /** The longest the guest may be stopped for the last pass of its memory, ms. */
  downtimeMs: number;
  /** Bytes per second for the disks and the memory each; undefined: as fast as the link goes. */
  bandwidth?: number;
}

/** Bytes copied in a phase, reported a few times a second. */
export interface CopyProgress {
  sent: number;
  left: number;
  total: number;
}

export interface MemoryCopyResult {
  /** The guest's downtime as the hypervisor reports it, in ms. */
  downtimeMs?: number;
}

/** A disk as a self-contained image, for a cold move. */
export interface DiskStream {
  stream: Readable;
  size: number;
  /** Removes what reading it made (a temporary flattened copy). */
  done(): Promise<void>;
}

/**
 * One backend's side of moving guests. Source methods take the guest as the
 * source's registry holds it; target methods the guest as the target will
 * hold it (prepareIncoming's answer). Every method may throw a
 * StageRejection (a refusal with a status) or an Error (a fault).
 */
export interface GuestMigrator {
  // ---- source side ----
  /** Whether the guest can leave (e.g. no snapshots); its facts for the target. */
  checkOutgoing(guest: Guest, live: boolean): Promise<OutgoingFacts>;
  /** Live: mirrors every disk to the target's exports; resolves once all are in sync (the mirrors go on). */
  copyDisks(guest: Guest, nbd: NonNullable<IncomingPlan['nbd']>, limits: CopyLimits, progress: (p: CopyProgress) => void, signal: AbortSignal): Promise<void>;
  /** Live: migrates the memory; resolves when the source's copy is stopped and the target has everything. */
  copyMemory(guest: Guest, memory: MigrationEndpoint, limits: CopyLimits, progress: (p: CopyProgress) => void, signal: AbortSignal): Promise<MemoryCopyResult>;
  /** Live, after copyMemory: ends the disk mirrors (the target's disks hold the last write). */
  finishOutgoing(guest: Guest): Promise<void>;
  /** Undoes an unfinished move: migration and mirrors cancelled, the guest resumed if `wasRunning`. Idempotent. */
  abortOutgoing(guest: Guest, wasRunning: boolean): Promise<void>;
  /** Cold: one disk as a self-contained image. */
  readDisk(guest: Guest, device: string): Promise<DiskStream>;
  /** The guest now lives elsewhere: its process stopped, its files and host devices removed. Idempotent. */
  removeOutgoing(guest: Guest): Promise<void>;

  // ---- target side ----
  /** Refuses (StageRejection 409/422, with what is missing) a guest this host cannot hold; nothing is made. */
  checkIncoming(guest: Guest): Promise<void>;
  /**
   * Makes the incoming copy: files, host devices and, live, a paused process
   * waiting for the disks and memory. Answers the guest as this host will
   * hold it (its own disk files, devices) and where to send what.
   */
  prepareIncoming(guest: Guest, live: boolean, facts: OutgoingFacts, listenHost: string): Promise<{ guest: Guest; plan: IncomingPlan }>;
  /** Cold: a disk's bytes (a qcow2 image), written and checked; nothing kept on a refusal. */
  writeDisk(guest: Guest, device: string, body: Readable): Promise<void>;
  /** Live: checks the incoming copy has everything and ends the disk exports; the guest stays paused. Cold: checks every disk arrived. */
  commitIncoming(guest: Guest, live: boolean): Promise<void>;
  /** Live, after the commit is durable: the guest runs here. */
  resumeIncoming(guest: Guest): Promise<void>;
  /** Removes an incoming copy that will not be committed (process, files, devices). Idempotent; works after a restart. */
  abortIncoming(guest: Guest): Promise<void>;
}
