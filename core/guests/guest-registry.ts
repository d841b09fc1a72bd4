/**
 * The guest registry: every guest on this host, held in memory (the API
 * answers reads from here) and written through to the state store before
 * any change is acknowledged.
 *
 * Guest objects are never mutated in place: each change stores a new object,
 * so a guest handed to a stage or a response cannot change under it. Every
 * read-modify-write happens synchronously in memory, so concurrent changes
 * (two PATCHes, a PATCH during a job) never lose each other.
 */
import type { GuestDirectory } from '../contract/plugin-api.js';
import type { Guest } from '../contract/wire-types.js';
import { applyMetadataPatch, metadataDiff, type MetadataPatch } from './metadata.js';
import type { StateStore } from '../state/state-store.js';
import type { AgentLogger } from '../logger.js';
import { draft, type EventDraft } from '../events/kernel-event.js';

const PREFIX = 'guest:';

export class GuestRegistry implements GuestDirectory {
  private readonly guests = new Map<string, Guest>();
  /** Each guest as UTF-8 JSON bytes, so reads neither re-serialize nor re-encode unchanged guests. */
  private readonly json = new Map<string, Buffer>();
  /** The whole list as UTF-8 bytes: sent as is, never re-encoded per request. */
  private listJsonCache: Buffer | undefined;

  constructor(
    private readonly store: StateStore,
    private readonly log: AgentLogger,
  ) {}

  async load(): Promise<void> {
    for (const [id, guest] of await this.store.loadAll<Guest>(PREFIX)) this.remember(id, guest);
  }

  get size(): number {
    return this.guests.size;
  }

  find(id: string): Guest | undefined {
    return this.guests.get(id);
  }

  all(): Guest[] {
    return [...this.guests.values()];
  }

  /** The guest as JSON bytes (cached until it changes). */
  jsonOf(id: string): Buffer | undefined {
    return this.json.get(id);
  }

  /** All guests as JSON array bytes (cached until any guest changes). */
  listJson(): Buffer {
    this.listJsonCache ??= joinJsonArray([...this.json.values()]);
    return this.listJsonCache;
  }

  /**
   * Store a guest (new or replaced) with the event reporting it (created or
   * changed unless given); durable when the promise resolves.
   */
  async save(guest: Guest, event?: EventDraft): Promise<Guest> {
    const type = this.guests.has(guest.id) ? 'guest.changed' : 'guest.created';
    this.remember(guest.id, guest);
    await this.store.put(PREFIX + guest.id, guest, event ?? draft(type, { guest }, guest.id));
    return guest;
  }

  async remove(id: string): Promise<void> {
    this.guests.delete(id);
    this.json.delete(id);
    this.listJsonCache = undefined;
    await this.store.delete(PREFIX + id, draft('guest.deleted', { guestId: id }, id));
  }

  async patchMetadata(id: string, patch: MetadataPatch): Promise<Guest | undefined> {
    const current = this.guests.get(id);
    if (!current) return undefined;
    const next = { ...current, metadata: applyMetadataPatch(current.metadata, patch) };
    return this.save(next);
  }

  /**
   * Apply the guest a stage returned. The stage worked from `sent`; clients
   * may have changed metadata meanwhile, so the stage's own metadata changes
   * are replayed onto the current metadata instead of overwriting it.
   */
  async applyStageResult(sent: Guest, returned: Guest): Promise<Guest> {
    const current = this.guests.get(sent.id);
    if (!current) return returned;
    const metadata = applyMetadataPatch(current.metadata, metadataDiff(sent.metadata ?? {}, returned.metadata ?? {}));
    return this.save({ ...returned, id: sent.id, metadata });
  }

  // GuestDirectory: what plugins see.

  async list(): Promise<Guest[]> {
    return this.all();
  }

  async get(id: string): Promise<Guest | undefined> {
    return this.guests.get(id);
  }

  async observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): Promise<void> {
    const current = this.guests.get(id);
    if (!current) return;
    const metadata = change.metadata ? { ...current.metadata, ...change.metadata } : current.metadata;
    const next = { ...current, ...change, id, metadata };
    if (change.state && change.state !== current.state) {
      this.log.info({ guest: id, from: current.state, to: change.state, reason }, 'guest state changed outside a job');
    }
    await this.save(next, draft('guest.observed', { guest: next, reason }, id));
  }

  private remember(id: string, guest: Guest): void {
    this.guests.set(id, guest);
    this.json.set(id, Buffer.from(JSON.stringify(guest)));
    this.listJsonCache = undefined;
  }
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

function joinJsonArray(items: Buffer[]): Buffer {
  const parts: Buffer[] = [OPEN];
  items.forEach((item, i) => parts.push(...(i > 0 ? [COMMA, item] : [item])));
  parts.push(CLOSE);
  return Buffer.concat(parts);
}
