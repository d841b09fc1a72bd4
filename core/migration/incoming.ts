/**
 * The target side of a move (docs/migration.md): the refusals of what this
 * host cannot hold, made before anything exists; the incoming copy, under a
 * durable record from before its first file; the commit, the one point where
 * ownership changes hands (the guest registered and the record marked
 * `committed` in one transaction); the abort, whose answer tells the source
 * which happened. Before the commit this side may drop its copy at any time:
 * at start, and when the source says it has no such move or stays silent.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { Readable } from 'node:stream';
import { Errors, messageOf } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import type { AgentLogger } from '../logger.js';
import type { StateStore } from '../state/state-store.js';
import type { IncomingPlan } from '../contract/plugin-api.js';
import type { Guest } from '../contract/wire-types.js';
import { backendCall, type MigrationBackends } from './migration-backend.js';
import type { MigrationHooks } from './migration-hooks.js';
import type { MigrationRecords, PeerAddress, TargetRecord } from './migration-records.js';
import { callPeer, PeerRefused } from './peer-client.js';
import { parsePrepareBody } from './prepare-body.js';

/** A source silent this long is asked whether the move still exists. */
const SILENCE_MS = 60_000;
/** A source unreachable this long loses the move: the copy here is dropped. */
const GIVE_UP_MS = 600_000;
const WATCH_MS = 5000;

export interface IncomingDeps {
  registry: GuestRegistry;
  records: MigrationRecords;
  backends: MigrationBackends;
  store: StateStore;
  hooks: MigrationHooks;
  log: AgentLogger;
}

export class IncomingMigrations {
  /** When each incoming move last heard from its source (not durable: a restart drops uncommitted moves anyway). */
  private readonly heard = new Map<string, number>();
  /** One operation per move at a time: a commit and an abort never interleave. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private watch?: NodeJS.Timeout;

  constructor(private readonly deps: IncomingDeps) {}

  /** POST /migrations/check: what this host would refuse, with nothing made (the source asks before it queues the move). */
  async check(body: unknown): Promise<void> {
    await this.refusals(parsePrepareBody(body));
  }

  /** POST /migrations: refusals first, then the incoming copy. */
  async prepare(body: unknown, peerAddress?: string): Promise<{ id: string; phase: string } & IncomingPlan> {
    const request = parsePrepareBody(body);
    request.source = reachable(request.source, peerAddress);
    const { id, guest, live } = request;
    const migrator = await this.refusals(request);
    await this.checkSource(id, guest.id, request.source);
    // Durable before the first file: a restart removes what a cut-off prepare made. No devices yet: none are ours.
    const record: TargetRecord = { role: 'target', id, guestId: guest.id, phase: 'preparing', live, guest: { ...guest, nics: guest.nics.map((n) => ({ ...n, device: '' })), vnc: 0 }, source: request.source, heardAt: Date.now() };
    await this.deps.records.put(record);
    try {
      const prepared = await backendCall('preparing the guest', () => migrator.prepareIncoming(guest, live, { diskBytes: request.diskBytes }, request.listenHost));
      await this.deps.records.update<TargetRecord>(id, { phase: 'incoming', guest: prepared.guest });
      this.heard.set(id, Date.now());
      this.startWatch();
      this.deps.log.info({ migration: id, guest: guest.id, live, source: request.source.url }, 'incoming move prepared');
      this.deps.hooks.incoming?.({ migrationId: id, guestId: guest.id, target: '', live, source: request.source.url });
      return { id, phase: 'incoming', ...prepared.plan };
    } catch (error) {
      await this.deps.records.remove(id);
      throw error;
    }
  }

  private async refusals({ id, guest }: { id: string; guest: Guest }) {
    if (this.deps.registry.find(guest.id)) throw Errors.conflict(`a guest with id ${guest.id} already exists on this host`);
    const busy = this.deps.records.get(id) ?? this.deps.records.forGuest(guest.id);
    if (busy) throw Errors.conflict(`guest ${guest.id} is already being moved here or away (migration ${busy.id})`);
    await checkCapacity(guest);
    const migrator = await this.deps.backends.of(guest);
    await backendCall('checking the guest', () => migrator.checkIncoming(guest));
    return migrator;
  }

  /** PUT /migrations/{id}/disks/{device}: a cold move's disk. */
  async writeDisk(id: string, device: string, body: Readable): Promise<void> {
    const record = this.incoming(id);
    if (record.live) throw Errors.conflict(`migration ${id} is live: its disks come over NBD`);
    this.heard.set(id, Date.now());
    const migrator = await this.deps.backends.of(record.guest);
    await backendCall(`receiving disk ${device}`, () => migrator.writeDisk(record.guest, device, body));
    this.heard.set(id, Date.now());
  }

  /** POST /migrations/{id}/commit: the guest becomes this host's. */
  commit(id: string): Promise<{ phase: 'committed'; guest: Guest }> {
    return this.serially(id, async () => {
      const found = this.deps.records.get(id);
      if (found?.role === 'target' && found.phase === 'committed') return { phase: 'committed' as const, guest: this.deps.registry.find(found.guestId) ?? found.guest };
      const record = this.incoming(id);
      const migrator = await this.deps.backends.of(record.guest);
      await backendCall('switching over', () => migrator.commitIncoming(record.guest, record.live));
      const guest = record.guest;
      // The one transaction where ownership changes hands.
      await this.deps.store.change(
        this.deps.registry.change(guest.id, () => guest),
        this.deps.records.change<TargetRecord>(id, (current) => current && { ...current, phase: 'committed' }),
      );
      this.heard.delete(id);
      if (record.live) {
        await backendCall('resuming the guest', () => migrator.resumeIncoming(guest)).catch((error: unknown) =>
          this.deps.log.error({ migration: id, guest: guest.id, err: messageOf(error) }, 'the guest is here but did not resume'),
        );
      }
      this.deps.hooks.arrived?.({ migrationId: id, guestId: guest.id, target: '', live: record.live, source: record.source.url });
      this.deps.log.info({ migration: id, guest: guest.id, source: record.source.url }, 'guest moved here');
      return { phase: 'committed' as const, guest: this.deps.registry.find(guest.id) ?? guest };
    });
  }

  /** POST /migrations/{id}/abort: drops an uncommitted copy; says which it was (the source's final word). */
  abort(id: string): Promise<{ phase: 'aborted' | 'committed' }> {
    return this.serially(id, async () => {
      const record = this.deps.records.get(id);
      if (!record || record.role !== 'target') throw Errors.routeNotFound(`no incoming migration ${id} on this host (never prepared, or already dropped)`);
      if (record.phase === 'committed') return { phase: 'committed' as const };
      await this.drop(record, 'the source aborted the move');
      return { phase: 'aborted' as const };
    });
  }

  /** DELETE /migrations/{id}: the source is done with a committed move. */
  async forget(id: string): Promise<void> {
    const record = this.deps.records.get(id);
    if (!record || record.role !== 'target') throw Errors.routeNotFound(`no incoming migration ${id} on this host`);
    if (record.phase !== 'committed') throw Errors.conflict(`migration ${id} is ${record.phase}, not committed; abort it instead`);
    await this.deps.records.remove(id);
  }

  /** At start: uncommitted copies dropped, committed guests resumed. */
  async recover(): Promise<void> {
    for (const record of this.deps.records.all()) {
      if (record.role !== 'target') continue;
      try {
        if (record.phase !== 'committed') await this.serially(record.id, () => this.drop(record, 'the agent restarted before the commit'));
        // A committed record outlives the move until the source is done; the guest may have moved on since.
        else if (record.live && this.deps.registry.find(record.guestId)) {
          const migrator = await this.deps.backends.of(record.guest);
          await migrator.resumeIncoming(record.guest).catch(() => undefined);
        }
      } catch (error) {
        this.deps.log.error({ migration: record.id, guest: record.guestId, err: messageOf(error) }, 'could not resolve an interrupted incoming move');
      }
    }
  }

  stop(): void {
    clearInterval(this.watch);
    this.watch = undefined;
  }

  private incoming(id: string): TargetRecord {
    const record = this.deps.records.get(id);
    if (!record || record.role !== 'target') throw Errors.routeNotFound(`no incoming migration ${id} on this host`);
    if (record.phase !== 'incoming') throw Errors.conflict(`migration ${id} is ${record.phase}`);
    return record;
  }

  private async drop(record: TargetRecord, reason: string): Promise<void> {
    const migrator = await this.deps.backends.of(record.guest);
    await backendCall('removing the incoming copy', () => migrator.abortIncoming(record.guest));
    await this.deps.records.remove(record.id);
    this.heard.delete(record.id);
    this.deps.log.warn({ migration: record.id, guest: record.guestId, reason }, 'incoming move dropped');
    this.deps.hooks.dropped?.({ migrationId: record.id, guestId: record.guestId, target: '', live: record.live, source: record.source.url }, reason);
  }

  /** The caller must be the source it names: that agent, asked with its own token, knows this move. */
  private async checkSource(id: string, guestId: string, source: PeerAddress): Promise<void> {
    let view: { role?: string; guestId?: string; phase?: string };
    try {
      view = await callPeer(source, { method: 'GET', path: `/migrations/${id}`, timeoutMs: 15_000 });
    } catch (error) {
      throw Errors.conflict(`the source agent ${source.url} could not confirm this move: ${messageOf(error)}`);
    }
    if (view.role !== 'source' || view.guestId !== guestId) throw Errors.conflict(`the source agent ${source.url} does not know a move of guest ${guestId} as migration ${id}`);
  }

  private serially<R>(id: string, run: () => Promise<R>): Promise<R> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    this.locks.set(id, next);
    void next.finally(() => this.locks.get(id) === next && this.locks.delete(id)).catch(() => undefined);
    return next;
  }

  private startWatch(): void {
    if (this.watch) return;
    this.watch = setInterval(() => void this.watchSources(), WATCH_MS);
    this.watch.unref();
  }

  /** Uncommitted moves whose source went quiet: asked, and dropped when it is gone or says so. */
  private async watchSources(): Promise<void> {
    const now = Date.now();
    for (const record of this.deps.records.all()) {
      if (record.role !== 'target' || record.phase !== 'incoming') continue;
      const heard = this.heard.get(record.id) ?? record.heardAt;
      if (now - heard < SILENCE_MS) continue;
      try {
        await callPeer(record.source, { method: 'GET', path: `/migrations/${record.id}`, timeoutMs: 10_000 });
        this.heard.set(record.id, now);
      } catch (error) {
        const gone = error instanceof PeerRefused && error.status === 404;
        if (gone || now - heard > GIVE_UP_MS) {
          await this.serially(record.id, () => this.drop(record, gone ? 'the source has no such move' : 'the source stayed unreachable')).catch(() => undefined);
        }
      }
    }
  }
}

/**
 * The source as this host reaches it: an agent listening on every address
 * (0.0.0.0, ::) names no address in its URL; the one its request came from
 * is used with its port.
 */
function reachable(source: PeerAddress, peerAddress: string | undefined): PeerAddress {
  const url = new URL(source.url);
  if (!peerAddress || !['0.0.0.0', '[::]', '::'].includes(url.hostname)) return source;
  const host = peerAddress.replace(/^::ffff:/, '');
  url.hostname = host.includes(':') ? `[${host}]` : host;
  return { ...source, url: url.origin };
}

/** Memory and CPUs: what a host cannot give, refused with what it has. */
async function checkCapacity(guest: Guest): Promise<void> {
  const cpus = os.cpus().length;
  if (guest.cpu > cpus) throw Errors.stageRejected(422, `guest ${guest.id} has ${guest.cpu} vCPUs; this host has ${cpus} CPUs`);
  const available = await availableMemoryMiB();
  if (guest.memory > available) throw Errors.stageRejected(422, `guest ${guest.id} needs ${guest.memory} MiB of memory; this host has ${available} MiB available`);
}

async function availableMemoryMiB(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const kib = /^MemAvailable:\s+(\d+) kB/m.exec(text)?.[1];
  return kib ? Math.floor(Number(kib) / 1024) : Math.floor(os.freemem() / (1 << 20));
}
