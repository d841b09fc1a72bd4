/**
 * The fleet link: keeps this host's record (under a lease) and its guest
 * inventory in etcd, off the request path. Guest changes only mark an id
 * dirty; one background loop turns dirty ids into batched transactions,
 * re-registers and fully reconciles after every failure, and backs off
 * while etcd is away. Nothing here is ever awaited by an API request.
 *
 * The queue is the set of dirty guest ids (a guest changed twice is written
 * once, with its newest state). It is bounded: past `maxQueued` it is
 * dropped and replaced by "resync needed", which the full reconcile after
 * the next (re)connect satisfies.
 */
import { EtcdLeaseInvalidError, type Etcd3, type IRequestOp, type Lease } from 'etcd3';
import type { Guest, GuestDirectory, Logger } from '../../core/contract/index.js';
import { guestCounts, hostRecord, summarize, type GuestCounts, type HostFacts } from './inventory.js';
import type { KeyLayout } from './key-layout.js';
import { maxSeq, withSeq, withoutSeq } from './seq-text.js';
import { sleep, Wakeup } from './wait.js';

export type LinkState = 'starting' | 'syncing' | 'synced' | 'disconnected' | 'stopped';

export interface LinkStatus {
  state: LinkState;
  /** When the link entered this state (ISO 8601). */
  since: string;
  /** Seq of the last committed transaction. */
  seq: number;
  /** Guests whose change waits to be written. */
  queued: number;
  /** The queue overflowed: the next sync rewrites everything that differs. */
  resyncNeeded: boolean;
  /** Full reconciles completed (the first registration counts). */
  reconciles: number;
  /** Transactions committed. */
  transactions: number;
  lastError?: string;
}

export interface LinkSettings {
  hostId: string;
  layout: KeyLayout;
  metadataKeys: readonly string[];
  leaseTtlSeconds: number;
  maxQueued: number;
  batchWindowMs: number;
}

/** What the link needs from the agent; `facts` is undefined until the API URL is known. */
export interface LinkSources {
  guests: GuestDirectory;
  facts(): Promise<HostFacts | undefined>;
}

/** etcd's default --max-txn-ops is 128; one slot stays free for the host record. */
const OPS_PER_TXN = 120;
/** How often the host record is recomputed when nothing else happens (health, URL). */
const REFRESH_MS = 1000;
const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 5000;

export class FleetLink {
  private state: LinkState = 'starting';
  private since = Date.now();
  private lastError: string | undefined;
  private seq = 0;
  private reconciles = 0;
  private transactions = 0;
  private readonly dirty = new Set<string>();
  private resyncNeeded = false;
  private needsReconcile = true;
  private lease: Lease | undefined;
  /** What etcd holds for each guest, as this link last wrote or read it (text without seq). */
  private mirrored = new Map<string, string>();
  /**
   * What the host record counts of every guest, kept as guests change: the
   * record is recomputed every second and with every flush, and listing
   * every guest for it parsed each one the registry does not keep parsed
   * (at 10,000 guests, most of them) every time.
   */
  private counted = new Map<string, GuestCounts>();
  private lastHostText: string | undefined;
  private readonly wake = new Wakeup();
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly settings: LinkSettings,
    private readonly sources: LinkSources,
    private readonly log: Logger,
  ) {}

  /** Note a changed guest; called on the agent's commit path, so it only records the id. */
  guestChanged(guestId: string): void {
    if (this.dirty.size >= this.settings.maxQueued && !this.dirty.has(guestId)) {
      if (!this.resyncNeeded) this.log.warn({ queued: this.dirty.size }, 'fleet: change queue full; collapsing it to one full resync');
      this.dirty.clear();
      this.resyncNeeded = true;
      this.needsReconcile = true;
    } else {
      this.dirty.add(guestId);
    }
    this.wake.notify();
  }

  start(): void {
    this.loop ??= this.run();
  }

  status(): LinkStatus {
    return {
      state: this.state,
      since: new Date(this.since).toISOString(),
      seq: this.seq,
      queued: this.dirty.size,
      resyncNeeded: this.resyncNeeded,
      reconciles: this.reconciles,
      transactions: this.transactions,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /**
   * Writes what is queued (when etcd is there), then revokes the lease: the
   * host key goes at once. Bounded by the client's call deadlines; if etcd
   * is away the lease simply expires.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake.notify();
    await this.loop;
    if (this.state === 'synced' && this.dirty.size > 0) {
      await this.flush().catch((error) => this.log.warn({ error: messageOf(error) }, 'fleet: last changes not written; the next start reconciles them'));
    }
    if (this.lease) {
      await this.lease.revoke().catch((error) => this.log.warn({ error: messageOf(error) }, 'fleet: could not revoke the lease; the host key expires with it'));
    }
    this.setState('stopped');
    this.client.close();
  }

  private async run(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    while (!this.stopping.signal.aborted) {
      try {
        if (this.needsReconcile) {
          const facts = await this.sources.facts();
          if (!facts) {
            await this.wake.wait(50);
            continue;
          }
          await this.reconcile(facts);
        } else if (this.dirty.size > 0) {
          if (this.settings.batchWindowMs > 0) await sleep(this.settings.batchWindowMs, this.stopping.signal);
          await this.flush();
        } else {
          await this.refreshHostRecord();
          await this.wake.wait(REFRESH_MS);
        }
        backoff = BACKOFF_MIN_MS;
      } catch (error) {
        if (this.stopping.signal.aborted) break;
        if (isLeaseInvalid(error)) this.dropLease();
        this.disconnected(error);
        await sleep(backoff, this.stopping.signal);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /**
   * Registration and the full inventory: whatever etcd holds under this
   * host's prefix is compared with the registry, and only the differences
   * are written; keys of guests this host no longer has are deleted. The
   * host record goes last, so a host appears with its inventory complete.
   */
  private async reconcile(facts: HostFacts): Promise<void> {
    this.setState('syncing');
    const { layout, hostId } = this.settings;
    // Changes from here on are seen by the snapshot below or queued again.
    this.dirty.clear();
    const lease = await this.ensureLease();
    const [remoteGuests, remoteHost] = await Promise.all([
      this.client.getAll().prefix(layout.guestsOf(hostId)).strings(),
      this.client.get(layout.host(hostId)).string(),
    ]);
    this.seq = Math.max(this.seq, maxSeq([remoteHost, ...Object.values(remoteGuests)]));
    const local = await this.sources.guests.list();
    this.counted = new Map(local.map((guest) => [guest.id, guestCounts(guest)]));
    const wanted = new Map(local.map((guest) => [guest.id, this.summaryText(guest)]));
    const ops: Array<{ guestId: string; text?: string }> = [];
    for (const [guestId, text] of wanted) {
      if (withoutSeq(remoteGuests[layout.guest(hostId, guestId)]) !== text) ops.push({ guestId, text });
    }
    const remoteIds = new Set(Object.keys(remoteGuests).map((key) => key.slice(layout.guestsOf(hostId).length)));
    for (const guestId of remoteIds) if (!wanted.has(guestId)) ops.push({ guestId });
    const written = new Set(ops.map((op) => op.guestId));
    this.mirrored = new Map();
    for (const [guestId, text] of wanted) if (!written.has(guestId)) this.mirrored.set(guestId, text);
    for (let i = 0; i < ops.length; i += OPS_PER_TXN) {
      const chunk = ops.slice(i, i + OPS_PER_TXN);
      const last = i + OPS_PER_TXN >= ops.length;
      await this.commit(chunk, last ? { facts, lease } : undefined);
    }
    if (ops.length === 0) await this.commit([], { facts, lease });
    this.resyncNeeded = false;
    this.needsReconcile = false;
    this.reconciles++;
    this.setState('synced');
    this.log.info({ hostId, guests: local.length, written: ops.length, seq: this.seq }, 'fleet: registered and inventory reconciled');
  }

  /** One transaction with the newest state of up to OPS_PER_TXN dirty guests and the host record. */
  private async flush(): Promise<void> {
    const ids = takeSome(this.dirty, OPS_PER_TXN);
    const ops: Array<{ guestId: string; text?: string }> = [];
    for (const guestId of ids) {
      const guest = await this.sources.guests.get(guestId);
      if (guest) this.counted.set(guestId, guestCounts(guest));
      else this.counted.delete(guestId);
      const text = guest ? this.summaryText(guest) : undefined;
      if (text !== this.mirrored.get(guestId)) ops.push({ guestId, text });
    }
    const facts = await this.sources.facts();
    const hostChanged = facts !== undefined && JSON.stringify(hostRecord(facts, this.counted.values())) !== this.lastHostText;
    if (ops.length === 0 && !hostChanged) return;
    try {
      await this.commit(ops, facts && this.lease ? { facts, lease: this.lease } : undefined);
    } catch (error) {
      // It may or may not have been applied: the reconcile after reconnect finds out.
      this.needsReconcile = true;
      throw error;
    }
  }

  /** Health, URL or capacity changed without a guest change: rewrite the host record. */
  private async refreshHostRecord(): Promise<void> {
    const facts = await this.sources.facts();
    if (!facts || !this.lease) return;
    if (JSON.stringify(hostRecord(facts, this.counted.values())) === this.lastHostText) return;
    try {
      await this.commit([], { facts, lease: this.lease });
    } catch (error) {
      this.needsReconcile = true;
      throw error;
    }
  }

  private async commit(
    changes: Array<{ guestId: string; text?: string }>,
    host: { facts: HostFacts; lease: Lease } | undefined,
  ): Promise<void> {
    const { layout, hostId } = this.settings;
    const seq = this.seq + 1;
    const ops: IRequestOp[] = changes.map(({ guestId, text }) => {
      const key = Buffer.from(layout.guest(hostId, guestId));
      return text === undefined
        ? { request_delete_range: { key } }
        : { request_put: { key, value: Buffer.from(withSeq(text, seq)) } };
    });
    let hostText: string | undefined;
    if (host) {
      hostText = JSON.stringify(hostRecord(host.facts, this.counted.values()));
      const leaseId = await host.lease.grant();
      ops.push({ request_put: { key: Buffer.from(layout.host(hostId)), value: Buffer.from(withSeq(hostText, seq)), lease: leaseId } });
    }
    await this.client.kv.txn({ success: ops });
    this.seq = seq;
    this.transactions++;
    for (const { guestId, text } of changes) {
      if (text === undefined) this.mirrored.delete(guestId);
      else this.mirrored.set(guestId, text);
    }
    if (hostText !== undefined) this.lastHostText = hostText;
  }

  /** The lease the host key lives under; a new one after loss (etcd away longer than the TTL). */
  private async ensureLease(): Promise<Lease> {
    if (this.lease && !this.lease.revoked()) {
      await this.lease.grant();
      return this.lease;
    }
    const lease = this.client.lease(this.settings.leaseTtlSeconds);
    this.lease = lease;
    lease.on('lost', (error) => {
      if (this.lease !== lease) return;
      this.lease = undefined;
      this.needsReconcile = true;
      // Once per outage: while disconnected every failed grant ends in "lost" again.
      if (this.state !== 'disconnected') this.log.warn({ error: messageOf(error) }, 'fleet: lease lost; registering again when etcd answers');
      this.wake.notify();
    });
    // A keepalive that fails means etcd was away: whatever happened meanwhile, reconcile.
    lease.on('keepaliveFailed', () => {
      if (this.lease !== lease || this.needsReconcile) return;
      this.needsReconcile = true;
      this.wake.notify();
    });
    try {
      await lease.grant();
    } catch (error) {
      if (this.lease === lease) this.lease = undefined;
      throw error;
    }
    return lease;
  }

  /** etcd no longer knows the lease (it lost its data, or the lease expired unseen). */
  private dropLease(): void {
    this.lease?.release();
    this.lease = undefined;
  }

  private summaryText(guest: Guest): string {
    return JSON.stringify(summarize(guest, this.settings.hostId, this.settings.metadataKeys));
  }

  private disconnected(error: unknown): void {
    const message = messageOf(error);
    if (this.state !== 'disconnected') this.log.warn({ error: message, queued: this.dirty.size }, 'fleet: etcd unreachable; the local API is unaffected, changes queue');
    this.lastError = message;
    this.needsReconcile = true;
    this.setState('disconnected');
  }

  private setState(state: LinkState): void {
    if (state === this.state) return;
    this.state = state;
    this.since = Date.now();
    if (state === 'synced') this.lastError = undefined;
  }
}

function isLeaseInvalid(error: unknown): boolean {
  return error instanceof EtcdLeaseInvalidError || /lease not found/i.test(messageOf(error));
}

function takeSome(set: Set<string>, count: number): string[] {
  const out: string[] = [];
  for (const id of set) {
    if (out.length >= count) break;
    out.push(id);
  }
  for (const id of out) set.delete(id);
  return out;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
