/**
 * core/guests: guests and host metadata in memory, written through the
 * state store before any 2xx; the create body parser; reserved metadata.
 * May import: contract, events (event shapes), state, errors, logger.
 *
 * The guest registry: every guest on this host, held in memory (the API
 * answers reads from here). A change reaches memory only once the state
 * store has committed it, so a refused write leaves nothing visible.
 *
 * Guest objects are never mutated in place: each change stores a new object,
 * so a guest handed to a stage or a response cannot change under it. Every
 * change is a function of the committed guest, applied in commit order, so
 * concurrent changes (two PATCHes, a PATCH during a job) never lose each other.
 *
 * Memory holds each guest as its JSON bytes (what GET answers) and keeps
 * parsed objects only for the guests used lately: at 10,000 guests the
 * objects of every guest were ~10 MiB of heap, and parsing them all at
 * start-up most of its time. A guest read again after it left the cache is
 * parsed again: an equal object, not the same one.
 */
import type { GuestDirectory } from '../contract/plugin-api.js';
import type { Guest } from '../contract/wire-types.js';
import { applyMetadataPatch, checkMetadataLimits, metadataDiff, type MetadataLimits, type MetadataPatch } from './metadata.js';
import { ReservedMetadata } from './reserved-metadata.js';
import type { KeyChange, StateStore } from '../state/state-store.js';
import type { AgentLogger } from '../logger.js';
import { draft, type EventDraft } from '../events/kernel-event.js';

const PREFIX = 'guest:';
/** Parsed guests kept: more than the guests a host runs actions on at once (the bench cycles through 1,000). */
const PARSED_KEPT = 2048;

export class GuestRegistry implements GuestDirectory {
  /** Each guest as UTF-8 JSON bytes, in the order guests were added: what the registry holds. */
  private readonly json = new Map<string, Buffer>();
  /** Guests used lately, parsed; least recently used first. */
  private readonly parsed = new Map<string, Guest>();
  /** The whole list as UTF-8 bytes: sent as is, never re-encoded per request. */
  private listJsonCache: Buffer | undefined;

  /** Keys owned by the agent and its plugins; set once the plugins are loaded. */
  reserved = new ReservedMetadata();

  constructor(
    private readonly store: StateStore,
    private readonly log: AgentLogger,
    private readonly limits: MetadataLimits = { keys: Infinity, bytes: Infinity },
  ) {}

  async load(): Promise<void> {
    const texts = await this.store.loadJsonTexts(PREFIX);
    // The list's bytes, made once from the stored texts; each guest's bytes
    // are a view into them (see listJson). A Buffer per guest first would
    // leave 10,000 of them and their pool slabs (~5 MiB at 10,000 guests)
    // as garbage that only a full collection frees.
    const list = Buffer.from(`[${texts.map(([, text]) => text).join(',')}]`);
    let at = OPEN.length;
    for (const [id, text] of texts) {
      const length = Buffer.byteLength(text);
      this.json.set(id, list.subarray(at, at + length));
      at += length + COMMA.length;
    }
    this.listJsonCache = list;
  }

  get size(): number {
    return this.json.size;
  }

  find(id: string): Guest | undefined {
    const kept = this.parsed.get(id);
    if (kept) {
      // Most recently used last.
      this.parsed.delete(id);
      this.parsed.set(id, kept);
      return kept;
    }
    const bytes = this.json.get(id);
    if (!bytes) return undefined;
    const guest = JSON.parse(bytes.toString()) as Guest;
    this.keep(id, guest);
    return guest;
  }

  /** Every guest, in the order they were added (parsed as needed; a full listing does not fill the cache). */
  all(): Guest[] {
    const out: Guest[] = [];
    for (const [id, bytes] of this.json) out.push(this.parsed.get(id) ?? (JSON.parse(bytes.toString()) as Guest));
    return out;
  }

  /** The guest as JSON bytes (cached until it changes). */
  jsonOf(id: string): Buffer | undefined {
    return this.json.get(id);
  }

  /**
   * All guests as JSON array bytes (cached until any guest changes). Each
   * guest's cached bytes then become a view into the list, so memory holds
   * every guest's JSON once, not twice (4.4 MiB each at 10,000 guests). A
   * view keeps the list it points into alive after a change drops the
   * cache, until the next list re-points every view: never more than the
   * two copies held before.
   */
  listJson(): Buffer {
    if (!this.listJsonCache) {
      const list = joinJsonArray([...this.json.values()]);
      let at = OPEN.length;
      for (const [id, bytes] of this.json) {
        this.json.set(id, list.subarray(at, at + bytes.length));
        at += bytes.length + COMMA.length;
      }
      this.listJsonCache = list;
    }
    return this.listJsonCache;
  }

  /**
   * The change that sets guest `id` to `next(current)` (undefined removes
   * it); visible here once durable. Commit it with the store, alone or
   * together with other changes (a job) that must land with it. The event
   * reporting it is guest.created, .changed or .deleted unless `event` says.
   */
  change(id: string, next: (current: Guest | undefined) => Guest | undefined, event: KeyChange<Guest>['event'] = guestEvent(id)): KeyChange<Guest> {
    return {
      key: PREFIX + id,
      current: () => this.find(id),
      next,
      event,
      apply: (guest) => (guest ? this.remember(id, guest) : this.forget(id)),
    };
  }

  /** Set guest `id` to `next(current)`; resolves with the guest once durable. */
  async update(id: string, next: (current: Guest | undefined) => Guest | undefined, event?: KeyChange<Guest>['event']): Promise<Guest | undefined> {
    let result: Guest | undefined;
    await this.store.change(this.change(id, (current) => (result = next(current)), event));
    return result;
  }

  /** Store a guest (new or replaced); durable when the promise resolves. */
  async save(guest: Guest): Promise<Guest> {
    await this.update(guest.id, () => guest);
    return guest;
  }

  async remove(id: string): Promise<void> {
    await this.update(id, () => undefined);
  }

  /**
   * A client's PATCH: refused (400, nothing changed) when it touches a
   * reserved key or takes the guest beyond the metadata limits, checked
   * against the committed metadata it applies to.
   */
  patchMetadata(id: string, patch: MetadataPatch): Promise<Guest | undefined> {
    return this.update(id, (current) => {
      if (!current) return undefined;
      this.reserved.checkPatch(current.metadata ?? {}, patch);
      const metadata = applyMetadataPatch(current.metadata ?? {}, patch);
      checkMetadataLimits(metadata, this.limits, `guest ${id}'s`);
      return { ...current, metadata };
    });
  }

  /** A new guest's metadata as a client gave it: reserved keys dropped, limits checked (400). */
  clientMetadata(metadata: Record<string, string>): Record<string, string> {
    const own = this.reserved.clientOnly(metadata);
    checkMetadataLimits(own, this.limits, "the guest's");
    return own;
  }

  /**
   * Apply the guest a stage returned. The stage worked from `sent`; clients
   * may have changed metadata meanwhile, so the stage's own metadata changes
   * are replayed onto the current metadata instead of overwriting it.
   */
  stageResult(sent: Guest, returned: Guest): (current: Guest | undefined) => Guest | undefined {
    const patch = metadataDiff(sent.metadata ?? {}, returned.metadata ?? {});
    return (current) => current && { ...returned, id: sent.id, metadata: applyMetadataPatch(current.metadata ?? {}, patch) };
  }

  async applyStageResult(sent: Guest, returned: Guest): Promise<Guest> {
    return (await this.update(sent.id, this.stageResult(sent, returned))) ?? returned;
  }

  // GuestDirectory: what plugins see.

  async list(): Promise<Guest[]> {
    return this.all();
  }

  async get(id: string): Promise<Guest | undefined> {
    return this.find(id);
  }

  async observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): Promise<void> {
    let from: string | undefined;
    const next = await this.update(id, (current) => {
      if (!current) return undefined;
      from = current.state;
      const metadata = change.metadata ? { ...current.metadata, ...change.metadata } : current.metadata;
      return { ...current, ...change, id, metadata };
    }, (guest) => guest && draft('guest.observed', { guest, reason }, id));
    if (next && change.state && change.state !== from) {
      this.log.info({ guest: id, from, to: change.state, reason }, 'guest state changed outside a job');
    }
  }

  /** A committed guest: its bytes, and the object itself while it is used. */
  private remember(id: string, guest: Guest): void {
    this.json.set(id, Buffer.from(JSON.stringify(guest)));
    this.parsed.delete(id);
    this.keep(id, guest);
    this.listJsonCache = undefined;
  }

  private keep(id: string, guest: Guest): void {
    this.parsed.set(id, guest);
    if (this.parsed.size > PARSED_KEPT) this.parsed.delete(this.parsed.keys().next().value!);
  }

  private forget(id: string): void {
    this.parsed.delete(id);
    this.json.delete(id);
    this.listJsonCache = undefined;
  }
}

/** The event of a change made through the API or a job stage. */
function guestEvent(id: string): (next: Guest | undefined, current: Guest | undefined) => EventDraft {
  return (next, current) => (next ? draft(current ? 'guest.changed' : 'guest.created', { guest: next }, id) : draft('guest.deleted', { guestId: id }, id));
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
