/**
 * The source side of a move: the `migrate` job on the guest's queue (an
 * executor of the job engine) walking the phases of docs/migration.md, each
 * written to the durable record before its work starts. Before `switching`
 * the source owns the guest and any failure, cancel or shutdown undoes the
 * move (the target told to drop its copy, QEMU's copies cancelled, the
 * guest resumed). From `switching` on the target's answer decides
 * (outgoing-resolution.ts).
 */
import { CANCELLED, type JobEngine, type JobExecutor, type JobResult, type JobRun } from '../jobs/job-engine.js';
import { Errors, messageOf } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import type { AgentLogger } from '../logger.js';
import type { KeyChange, StateStore } from '../state/state-store.js';
import type { CopyProgress, IncomingPlan } from '../contract/plugin-api.js';
import type { Guest, Job } from '../contract/wire-types.js';
import { MIGRATE_LIFECYCLE } from '../contract/lifecycle.js';
import { backendCall, type MigrationBackends } from './migration-backend.js';
import type { MigrationHooks, MoveInfo } from './migration-hooks.js';
import type { MigrationRecords, PeerAddress, SourcePhase, SourceRecord } from './migration-records.js';
import { OutgoingResolution } from './outgoing-resolution.js';
import { callPeer, PeerRefused, PeerUnreachable } from './peer-client.js';
import { resolveTarget, type HostLookup, type MigrateBody } from './target-resolver.js';
import { TargetTokens } from './target-tokens.js';

export const MIGRATE_ACTION = 'migrate';
/** States a guest may move from: running moves live, the others cold. */
export const MIGRATABLE_STATES = MIGRATE_LIFECYCLE.from;
/** The downtime QEMU may take for the last pass of the RAM (migrate-set-parameters downtime-limit). */
export const DOWNTIME_LIMIT_MS = 300;

/** What GET /jobs/{id} shows of a running move, as `Migration`. */
export interface MoveProgress {
  phase: SourcePhase;
  target: string;
  bytesSent: number;
  bytesLeft: number;
  bytesTotal: number;
}

export interface OutgoingDeps {
  registry: GuestRegistry;
  records: MigrationRecords;
  backends: MigrationBackends;
  engine: JobEngine;
  store: StateStore;
  hooks: MigrationHooks;
  log: AgentLogger;
  /** This agent as the target reaches it back (its URL, one of its tokens). */
  self(): PeerAddress;
  lookup?: HostLookup;
}

export class OutgoingMigrations implements JobExecutor {
  readonly kind = 'migration';
  private readonly progress = new Map<string, MoveProgress>();
  private readonly laps = new Map<string, { at: number; text: string[] }>();
  readonly resolution: OutgoingResolution;
  /** The targets' tokens of queued moves: in memory, never in the job's args on disk. */
  private readonly tokens = new TargetTokens();

  constructor(private readonly deps: OutgoingDeps) {
    this.resolution = new OutgoingResolution(deps);
    deps.engine.register(this);
  }

  handles(action: string): boolean {
    return action === MIGRATE_ACTION;
  }

  /** POST /guests/{id}/migrate: checked, then queued. */
  async request(guestId: string, body: MigrateBody, args: Record<string, unknown>): Promise<{ job: Job; guest: Guest }> {
    this.deps.engine.checkAccepting();
    const guest = this.deps.registry.find(guestId);
    if (!guest) throw Errors.guestNotFound(guestId);
    checkMovable(guest);
    const busy = this.deps.records.forGuest(guestId);
    if (busy) throw Errors.conflict(`guest ${guestId} is already being moved (migration ${busy.id}, phase ${busy.phase})`);
    // Before the target is asked (up to 30 s): a malformed request is answered at once.
    if (body.bandwidth !== undefined && !(Number.isInteger(body.bandwidth) && body.bandwidth > 0)) throw Errors.badRequest('"bandwidth": a whole number of MiB/s above 0');
    const target = await resolveTarget(body, this.deps.lookup);
    // What the source or the target would refuse is the request's answer, before any job or copy.
    const migrator = await this.deps.backends.of(guest);
    const live = guest.state === 'running';
    const facts = await backendCall('checking the guest', () => migrator.checkOutgoing(guest, live));
    await callPeer(target, { method: 'POST', path: '/migrations/check', body: this.prepareBody(`check-${guest.id}`, guest, live, facts.diskBytes, target), timeoutMs: 30_000 }).catch((error) =>
      peerError(error, credentialOf(target)),
    );
    const bandwidth = body.bandwidth ? { bandwidth: body.bandwidth * 1024 * 1024 } : {};
    const jobArgs = { ...args, ...this.tokens.keep(target), ...bandwidth };
    const job = await this.deps.engine.submit(guestId, MIGRATE_ACTION, jobArgs).catch((error: unknown) => {
      this.tokens.drop(jobArgs);
      throw error;
    });
    return { job, guest };
  }

  /** The job's extension fields while it runs. */
  progressOf(job: Job): Record<string, unknown> | undefined {
    const progress = this.progress.get(job.ID);
    return progress && { Migration: progress };
  }

  /** A move cancelled while queued never runs: the token held for it in memory is forgotten. */
  failed(_job: Job, args: Record<string, unknown>, _reason: string, ran: boolean): KeyChange<Guest>[] {
    if (!ran) this.tokens.drop(args);
    return [];
  }

  /** From `switching` on, the move can no longer be undone. */
  refuseCancel(job: Job): string | undefined {
    const phase = this.progress.get(job.ID)?.phase;
    if (phase === 'switching' || phase === 'committed') return `the move is ${phase}: the target is taking the guest over, which can no longer be undone`;
    return undefined;
  }

  async run({ job, args, cancel, shutdown, log }: JobRun): Promise<JobResult> {
    const target = await this.tokens.take(args, this.deps.lookup);
    const guest = this.deps.registry.find(job.GuestID);
    if (!guest) throw new Error(`guest ${job.GuestID} no longer exists`);
    checkMovable(guest);
    const live = guest.state === 'running';
    const move: MoveInfo = { migrationId: job.ID, guestId: guest.id, target: target.url, live, ...(target.hostId ? { hostId: target.hostId } : {}) };
    const stop = AbortSignal.any([cancel, shutdown]);
    const started = performance.now();
    const migrator = await this.deps.backends.of(guest);
    const limits = { downtimeMs: DOWNTIME_LIMIT_MS, ...(typeof args.bandwidth === 'number' ? { bandwidth: args.bandwidth } : {}) };
    this.show(job.ID, target, 'checking');
    this.lap(job.ID, 'start');
    this.deps.hooks.started?.(move);
    try {
      const facts = await backendCall('checking the guest', () => migrator.checkOutgoing(guest, live));
      stop.throwIfAborted();
      const record: SourceRecord = { role: 'source', id: job.ID, guestId: guest.id, phase: 'preparing', live, wasRunning: live, target, startedAt: new Date().toISOString() };
      // Durable before the target makes anything: a restart knows to tell it to drop it.
      await this.deps.records.put(record);
      this.show(job.ID, target, 'preparing', move);
      let sentBytes = { disks: 0, memory: 0 };
      let downtimeMs: number | undefined;
      try {
        const plan = await callPeer<IncomingPlan>(target, {
          method: 'POST',
          path: '/migrations',
          body: this.prepareBody(job.ID, guest, live, facts.diskBytes, target),
          timeoutMs: 120_000,
        });
        stop.throwIfAborted();
        this.lap(job.ID, 'preparing');
        // Live: what each copy will send is known before QEMU's first count (the disks' sizes, the RAM), so GET /jobs shows it from the phase's start.
        await this.enter(record, 'disks', move, live ? Object.values(facts.diskBytes).reduce((sum, bytes) => sum + bytes, 0) : 0);
        if (live) {
          if (!plan.nbd || !plan.memory) throw new Error('the target answered no NBD or migration address for a live move');
          const nbd = plan.nbd;
          await backendCall('copying the disks', () => migrator.copyDisks(guest, nbd, limits, this.meter(job.ID, (p) => (sentBytes.disks = p.sent)), stop));
          this.lap(job.ID, 'disks');
          await this.enter(record, 'memory', move, guest.memory * 1024 * 1024);
          const memory = plan.memory;
          const result = await backendCall('copying the memory', () => migrator.copyMemory(guest, memory, limits, this.meter(job.ID, (p) => (sentBytes.memory = p.sent)), stop));
          downtimeMs = result.downtimeMs;
          this.lap(job.ID, 'memory');
          await backendCall('ending the disk copies', () => migrator.finishOutgoing(guest));
          this.lap(job.ID, 'ending the disk copies');
          this.deps.hooks.copied?.(move, { downtimeMs: result.downtimeMs, diskBytes: sentBytes.disks, memoryBytes: sentBytes.memory });
          log.info({ downtimeMs: result.downtimeMs, disks: sentBytes.disks, memory: sentBytes.memory }, 'guest copied to the target');
        } else {
          sentBytes = await this.sendDisks(job.ID, guest, target, stop);
          this.lap(job.ID, 'disks');
          this.deps.hooks.copied?.(move, { diskBytes: sentBytes.disks, memoryBytes: 0 });
        }
        stop.throwIfAborted();
      } catch (error) {
        const reason = stop.aborted ? CANCELLED : messageOf(error);
        await this.resolution.undo(record, guest, reason);
        this.deps.hooks.failed?.(move, reason);
        peerError(error);
      }
      // The point of no return: durable before the commit is asked for (docs/migration.md).
      await this.enter(record, 'switching', move);
      const arrived = await this.resolution.switchOver(record, guest).catch((error: unknown) => {
        this.deps.hooks.failed?.(move, messageOf(error));
        throw error;
      });
      this.show(job.ID, target, 'committed', move);
      this.lap(job.ID, 'switching over');
      const changes = await this.resolution.handOver(record, guest);
      // The copy here goes once the job's end (and the guest's removal from the registry) is durable: off the move's clock.
      void this.deps.engine
        .waitForJob(job.ID, 600_000)
        .then(() => this.resolution.removeCopy(job.ID))
        .catch((error: unknown) => {
          log.error({ err: messageOf(error) }, "removing the moved guest's copy here failed; retrying");
          this.resolution.schedule();
        });
      this.deps.hooks.moved?.(move, (performance.now() - started) / 1000);
      const how = live ? 'live' : 'cold';
      const copied = `${formatBytes(sentBytes.disks)} of disks${live ? `, ${formatBytes(sentBytes.memory)} of memory, downtime ${downtimeMs ?? '?'} ms` : ''}`;
      return { message: `moved ${how} to ${target.url}: ${copied} (${this.laps.get(job.ID)?.text.join(', ')})`, changes, guest: arrived ?? { ...guest } };
    } finally {
      this.progress.delete(job.ID);
      this.laps.delete(job.ID);
    }
  }

  private prepareBody(id: string, guest: Guest, live: boolean, diskBytes: Record<string, number>, target: PeerAddress): object {
    return { id, guest, live, diskBytes, listenHost: new URL(target.url).hostname, source: this.deps.self() };
  }

  /** Cold: each disk streamed to the target as a self-contained image. */
  private async sendDisks(jobId: string, guest: Guest, target: PeerAddress, stop: AbortSignal): Promise<{ disks: number; memory: number }> {
    const migrator = await this.deps.backends.of(guest);
    let done = 0;
    for (const disk of guest.disks) {
      stop.throwIfAborted();
      const image = await backendCall(`reading disk ${disk.device}`, () => migrator.readDisk(guest, disk.device));
      try {
        const onAbort = () => image.stream.destroy(new Error(CANCELLED));
        stop.addEventListener('abort', onAbort, { once: true });
        image.stream.on('data', (chunk: Buffer) => {
          done += chunk.length;
          const progress = this.progress.get(jobId);
          if (progress) Object.assign(progress, { bytesSent: done, bytesLeft: Math.max(0, progress.bytesTotal - done) });
        });
        const shown = this.progress.get(jobId);
        if (shown) shown.bytesTotal += image.size;
        await callPeer(target, { method: 'PUT', path: `/migrations/${jobId}/disks/${disk.device}`, stream: { data: image.stream, size: image.size }, timeoutMs: 3_600_000 });
        stop.removeEventListener('abort', onAbort);
      } finally {
        await image.done();
      }
    }
    return { disks: done, memory: 0 };
  }

  private async enter(record: SourceRecord, phase: SourcePhase, move: MoveInfo, bytesTotal = 0): Promise<void> {
    record.phase = phase;
    await this.deps.records.update<SourceRecord>(record.id, { phase });
    this.show(record.id, record.target, phase, move, bytesTotal);
  }

  /** How long each phase took, for the job's message (where a slow move spent its time). */
  private lap(jobId: string, phase: string): void {
    const laps = this.laps.get(jobId) ?? { at: performance.now(), text: [] as string[] };
    const now = performance.now();
    if (this.laps.has(jobId)) laps.text.push(`${phase} ${Math.round(now - laps.at)} ms`);
    laps.at = now;
    this.laps.set(jobId, laps);
  }

  private show(jobId: string, target: PeerAddress, phase: SourcePhase, move?: MoveInfo, bytesTotal = 0): void {
    this.progress.set(jobId, { phase, target: target.url, bytesSent: 0, bytesLeft: bytesTotal, bytesTotal });
    if (move) this.deps.hooks.phase?.(move, phase);
  }

  private meter(jobId: string, sent: (p: CopyProgress) => void): (p: CopyProgress) => void {
    return (p) => {
      sent(p);
      const progress = this.progress.get(jobId);
      if (progress) Object.assign(progress, { bytesSent: p.sent, bytesLeft: p.left, bytesTotal: p.total });
    };
  }
}

/** Which credential a 401/403 of the target refuses, from the resolved target (a Go client's `"host": ""` is no host). */
function credentialOf(target: PeerAddress): { given: boolean; what: string } {
  if (target.hostId !== undefined) return { given: false, what: `the fleet plugin's token for host "${target.hostId}" (peerTokens, peerToken)` };
  if (target.token === undefined) return { given: true, what: 'a move without a token: it needs one; give the target agent\'s bearer token as "token"' };
  return { given: true, what: 'the token given for it ("token")' };
}

/**
 * A peer's refusal as this agent's answer. The target refusing our
 * credentials (401, 403) is never passed on as a 401 of our own: the
 * client's token to this agent was fine (a browser would ask its user for
 * another): 400 when the client gave the target's token, 502 when it came
 * from the config.
 */
function peerError(error: unknown, credential?: { given: boolean; what: string }): never {
  if (error instanceof PeerRefused && credential && (error.status === 401 || error.status === 403)) {
    const message = `the target agent does not accept ${credential.what}: it answered ${error.status} (${error.message})`;
    throw credential.given ? Errors.badRequest(message) : Errors.stageFailed(message);
  }
  if (error instanceof PeerRefused) throw Errors.stageRejected(error.status, `the target refuses the guest: ${error.message}`);
  if (error instanceof PeerUnreachable) throw Errors.stageFailed(`cannot reach the target agent: ${error.message}`);
  throw error;
}

function checkMovable(guest: Guest): void {
  if (!(MIGRATABLE_STATES as readonly string[]).includes(guest.state)) {
    throw Errors.conflict(`guest ${guest.id} is ${guest.state}; a move needs it running (live), off or shutdown (cold)`);
  }
}

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${bytes} bytes`;
}
