/**
 * core/state: the SQLite state file (Keyv, WAL), group commit, the data-dir lock.
 * May import: events (event shapes, the change feed it feeds), errors.
 *
 * Durable state: one SQLite file in the data dir, read through Keyv and
 * written through a connection of kept prepared statements
 * (sqlite-writer.ts). Keys are prefixed by kind ("guest:", "job:",
 * "host:") in one table so that that connection serialises all writes in
 * Keyv's row format. WAL with synchronous=NORMAL: a
 * committed write survives a crash of the agent process (kill -9), which is
 * the guarantee the API makes; fsync per commit would only add power-loss
 * safety at a large cost per request.
 *
 * The events table holds the change feed: each change and the event that
 * reports it are committed in one transaction, so both are on disk or
 * neither is; the oldest events beyond the retention bound are dropped in
 * the same transaction.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { Errors, HyperkernError } from '../errors.js';
import { GroupCommit, type Commit, type KeyChange } from './group-commit.js';
import { SqliteWriter } from './sqlite-writer.js';
import { ChangeFeed, eventJson } from '../events/change-feed.js';
import type { EventDraft, KernelEvent } from '../events/kernel-event.js';

export const STATE_FILE = 'hyperkern.sqlite';
/**
 * Rows per page when state is loaded at start: each page is a round trip to
 * SQLite's thread, and 100-row pages made 200 of them at 10,000 guests and
 * jobs (~45 ms of start-up); one query for everything made the driver hold
 * every row natively at once (see loadAllWithJson).
 */
const LOAD_PAGE_ROWS = 1000;
/** Rows per event INSERT: 4 parameters each, well under SQLite's cap. */
const EVENT_INSERT_ROWS = 500;
export const DEFAULT_EVENT_RETENTION = 100_000;
/** How long a statement waits for a lock another connection holds (another process with the file open: a backup, sqlite3 by hand). */
const BUSY_TIMEOUT_MS = 10_000;

export interface StoreOptions {
  /** Events kept; older ones are dropped (a client resuming before them gets a reset). */
  eventRetention?: number;
}

export type { KeyChange } from './group-commit.js';

/** See StateStore.deserialize. */
const MAY_HOLD_ESCAPED_STRING = /[:,[]":/;
/** How Keyv's serializer starts a row holding `{ value, expires: undefined }`. */
const VALUE_OPEN = '{"value":';

export class StateStore {
  private readonly group: GroupCommit;
  private readonly serialize: (data: unknown) => string | Promise<string>;
  readonly feed: ChangeFeed;

  private constructor(
    readonly file: string,
    private readonly sqlite: KeyvSqlite,
    private readonly keyv: Keyv,
    /** Every commit is written through it (sqlite-writer.ts); reads go through Keyv's connection. */
    private readonly writer: SqliteWriter,
    private nextEventId: number,
    /** The id of the oldest event kept (nextEventId when none): the retention prune runs only when it has something to drop. */
    private oldestEventId: number,
    private readonly eventRetention: number,
  ) {
    // Rows keep Keyv's format ({"value":…} through Keyv's serializer), so
    // keyv.get and loadAll read them as before; only the commits are grouped.
    this.serialize = (keyv.serialize ?? JSON.stringify) as (data: unknown) => string | Promise<string>;
    this.group = new GroupCommit((batch) => this.commit(batch));
    this.feed = new ChangeFeed({ read: (after, upTo, limit) => this.readEvents(after, upTo, limit) }, nextEventId - 1);
  }

  /**
   * One transaction for the batch: its rows, its events (ids in commit
   * order) and the retention prune: all of it lands, or none. Commits run
   * one at a time (GroupCommit), so the statements of two transactions
   * never interleave on the connection, and the events are published in id
   * order once they are durable.
   */
  private async commit({ upserts, deletes, events }: Commit): Promise<void> {
    const time = new Date().toISOString();
    const committed: KernelEvent[] = events.map((e, i) => ({ id: this.nextEventId + i, time, ...e }));
    const rows: string[] = [];
    for (const [key, value] of upserts) rows.push(key, await this.serialize({ value, expires: undefined }));
    const lastEventId = committed.length > 0 ? committed[committed.length - 1].id : 0;
    const pruneUpTo = lastEventId - this.eventRetention;
    await this.writer.run('BEGIN IMMEDIATE');
    try {
      if (upserts.length > 0) {
        await this.writer.run(`INSERT INTO keyv (key, value) VALUES ${upserts.map(() => '(?, ?)').join(', ')} ON CONFLICT(key) DO UPDATE SET value = excluded.value`, rows);
      }
      if (deletes.length > 0) {
        await this.writer.run(`DELETE FROM keyv WHERE key IN (${deletes.map(() => '?').join(', ')})`, deletes);
      }
      for (let i = 0; i < committed.length; i += EVENT_INSERT_ROWS) {
        const rows = committed.slice(i, i + EVENT_INSERT_ROWS);
        await this.writer.run(
          `INSERT INTO events (id, type, guest, body) VALUES ${rows.map(() => '(?, ?, ?, ?)').join(', ')}`,
          rows.flatMap((e) => [e.id, e.type, e.guest ?? null, eventJson(e)]),
        );
      }
      if (committed.length > 0 && pruneUpTo >= this.oldestEventId) {
        await this.writer.run('DELETE FROM events WHERE id <= ?', [pruneUpTo]);
      }
      await this.writer.run('COMMIT');
    } catch (error) {
      // SQLITE_FULL may leave the transaction open (even after a failed COMMIT).
      await this.writer.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
    if (committed.length > 0 && pruneUpTo >= this.oldestEventId) this.oldestEventId = pruneUpTo + 1;
    this.nextEventId += committed.length;
    this.feed.publish(committed);
  }

  private async readEvents(after: number, upTo: number, limit: number): Promise<KernelEvent[]> {
    const rows = (await this.sqlite.query('SELECT body FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?', after, upTo, limit)) as Array<{ body: string }>;
    return rows.map((row) => JSON.parse(row.body) as KernelEvent);
  }

  /** Number of events held (for metrics). */
  async eventsRetained(): Promise<number> {
    const rows = (await this.sqlite.query('SELECT COUNT(*) AS n FROM events')) as Array<{ n: number }>;
    return rows[0]?.n ?? 0;
  }

  static async open(dataDir: string, options: StoreOptions = {}): Promise<StateStore> {
    try {
      await mkdir(dataDir, { recursive: true });
    } catch (error) {
      throw Errors.storage(`cannot create data dir ${dataDir}: ${(error as NodeJS.ErrnoException).code}; choose another with --data-dir or HYPERKERN_DATA_DIR`, { cause: error });
    }
    const file = path.join(dataDir, STATE_FILE);
    const sqlite = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: BUSY_TIMEOUT_MS, iterationLimit: 1000 } as ConstructorParameters<typeof KeyvSqlite>[0]);
    const keyv = new Keyv({ store: sqlite, namespace: '', useKeyPrefix: false });
    try {
      await sqlite.query('PRAGMA journal_mode=WAL');
      await sqlite.query('PRAGMA synchronous=NORMAL');
      // 256 KiB of pages (SQLite's default is 2 MiB): the OS page cache holds the file anyway, and the agent's RSS is bounded (issue 16).
      await sqlite.query('PRAGMA cache_size=-256');
      await sqlite.query('CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, type TEXT NOT NULL, guest TEXT, body TEXT NOT NULL)');
      const [{ oldest, latest }] = (await sqlite.query('SELECT MIN(id) AS oldest, COALESCE(MAX(id), 0) AS latest FROM events')) as Array<{ oldest: number | null; latest: number }>;
      const writer = await SqliteWriter.open(file, BUSY_TIMEOUT_MS);
      return new StateStore(file, sqlite, keyv, writer, latest + 1, oldest ?? latest + 1, options.eventRetention ?? DEFAULT_EVENT_RETENTION);
    } catch (error) {
      throw Errors.storage(`cannot open state file ${file}: ${(error as Error).message}; restore it from a backup, or move it away to start with no guests`, { cause: error });
    }
  }

  /**
   * A row's value, and the exact JSON text of that value when the row is
   * plain JSON: Keyv's serializer wrote `{"value":<JSON of the value>}`, and
   * JSON.stringify of what JSON.parse returns gives back the same text, so
   * a reader that keeps the JSON (the guest registry's cached bytes) takes
   * it from the row instead of serializing every value again at boot.
   */
  private deserialize(text: string): { value: unknown; json?: string } | undefined {
    // Keyv's deserializer revives every value through a callback, which was
    // most of start-up at 10,000 guests. It only changes strings that start
    // with ':' (escaped by its serializer, or ':base64:' Buffers); in the
    // serializer's output (no whitespace) such a string follows ':', ',' or
    // '['. A row with none of those is plain JSON.
    if (!MAY_HOLD_ESCAPED_STRING.test(text)) {
      const row = JSON.parse(text) as { value: unknown } | undefined;
      // Only `value` in the row (no `expires`): then the rest is the value's JSON.
      const plain = row !== null && typeof row === 'object' && text.startsWith(VALUE_OPEN) && Object.keys(row).length === 1;
      return row && { value: row.value, json: plain ? text.slice(VALUE_OPEN.length, -1) : undefined };
    }
    const row = (this.keyv.deserialize ? this.keyv.deserialize(text) : JSON.parse(text)) as { value: unknown } | undefined;
    return row && { value: row.value };
  }

  /** All values whose key starts with `prefix` (loaded once, at startup). */
  async loadAll<T>(prefix: string): Promise<Array<[string, T]>> {
    return (await this.loadAllWithJson<T>(prefix)).map(([key, value]) => [key, value]);
  }

  /**
   * Every value whose key starts with `prefix` as its JSON text, parsed by
   * nobody on the agent's thread where the row holds that text verbatim
   * (SQLite checks each row is valid JSON); a row Keyv escaped is decoded
   * and serialized again. For an owner that holds values as JSON bytes.
   */
  async loadJsonTexts(prefix: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    let after = prefix;
    for (;;) {
      const rows = (await this.read(`reading ${prefix}* rows`, () =>
        this.sqlite.query(
          `SELECT key, substr(key, ${prefix.length + 1}) AS id, value, json_valid(value) AS valid FROM keyv WHERE key > ? AND key < ? ORDER BY key LIMIT ${LOAD_PAGE_ROWS}`,
          after,
          prefix + '\uffff',
        ),
      )) as Array<{ key: string; id: string; value: string; valid: number }>;
      for (const row of rows) {
        if (!row.valid) throw Errors.storage(`state file ${this.file} is unreadable (row ${row.key} is not JSON); restore it from a backup, or move it away to start with no guests`);
        // `{"value":{…}}`: an object and no `expires` after it; no string Keyv may have escaped.
        if (row.value.startsWith(VALUE_OPEN + '{') && row.value.endsWith('}}') && !MAY_HOLD_ESCAPED_STRING.test(row.value)) {
          out.push([row.id, row.value.slice(VALUE_OPEN.length, -1)]);
          continue;
        }
        const decoded = await this.read(`decoding row ${row.key}`, async () => this.deserialize(row.value));
        if (decoded) out.push([row.id, decoded.json ?? JSON.stringify(decoded.value)]);
      }
      if (rows.length < LOAD_PAGE_ROWS) return out;
      after = rows[rows.length - 1].key;
    }
  }

  /** The same, each with its value's JSON text when the row holds it verbatim (see deserialize). */
  async loadAllWithJson<T>(prefix: string): Promise<Array<[string, T, string | undefined]>> {
    // In pages, by key: one query for every row made the SQLite driver hold
    // them all natively at once, and the process kept that memory for good.
    const out: Array<[string, T, string | undefined]> = [];
    let after = prefix;
    for (;;) {
      const rows = (await this.read(`reading ${prefix}* rows`, () =>
        // The id cut by SQLite: a slice of the key in JS would keep the whole key string alive with it.
        this.sqlite.query(`SELECT key, substr(key, ${prefix.length + 1}) AS id, value FROM keyv WHERE key > ? AND key < ? ORDER BY key LIMIT ${LOAD_PAGE_ROWS}`, after, prefix + '\uffff'),
      )) as Array<{ key: string; id: string; value: string }>;
      for (const row of rows) {
        // Keyv's own deserializer: its serializer escapes strings that start
        // with ':', which plain JSON.parse would hand back escaped.
        const decoded = await this.read(`decoding row ${row.key}`, async () => this.deserialize(row.value));
        if (decoded) out.push([row.id, decoded.value as T, decoded.json]);
      }
      if (rows.length < LOAD_PAGE_ROWS) return out;
      after = rows[rows.length - 1].key;
    }
  }

  /**
   * Every row whose key starts with `prefix`, each as its key's rest (`id`),
   * its stored text (`text`, for `fromRowText` later) and the JSON paths of
   * `fields` read from it by SQLite: an owner that holds most of its values
   * as text indexes them without parsing each one on the agent's thread.
   * A field's value is what the row holds, Keyv's escaping included (a
   * string starting with ':' comes back with a second one).
   */
  async loadRowTexts<F extends string>(prefix: string, fields: Record<F, string>): Promise<Array<{ id: string; text: string } & Record<F, unknown>>> {
    const names = Object.keys(fields) as F[];
    const columns = names.map((name, i) => `json_extract(value, ?) AS f${i}`).join(', ');
    const paths = names.map((name) => `$.value.${fields[name]}`);
    const out: Array<{ id: string; text: string } & Record<F, unknown>> = [];
    let after = prefix;
    for (;;) {
      const rows = (await this.read(`reading ${prefix}* rows`, () =>
        this.sqlite.query(
          `SELECT key, substr(key, ${prefix.length + 1}) AS id, value AS text${columns ? `, ${columns}` : ''} FROM keyv WHERE key > ? AND key < ? ORDER BY key LIMIT ${LOAD_PAGE_ROWS}`,
          ...paths,
          after,
          prefix + '\uffff',
        ),
      )) as Array<Record<string, unknown> & { key: string; id: string; text: string }>;
      for (const row of rows) {
        const entry = { id: row.id, text: row.text } as { id: string; text: string } & Record<F, unknown>;
        names.forEach((name, i) => (entry[name] = row[`f${i}`] as never));
        out.push(entry);
      }
      if (rows.length < LOAD_PAGE_ROWS) return out;
      after = rows[rows.length - 1].key;
    }
  }

  /**
   * The text a value is stored as (Keyv's row format), for an owner that
   * holds a value as text until asked for it; undefined when the serializer
   * is not synchronous.
   */
  rowText(value: unknown): string | undefined {
    const text = this.serialize({ value, expires: undefined });
    return typeof text === 'string' ? text : undefined;
  }

  /** The value of a row's text (from loadRowTexts or rowText). */
  fromRowText<T>(text: string): T {
    const decoded = this.deserialize(text);
    if (!decoded) throw Errors.storage(`state file ${this.file} holds a row that is not a value`);
    return decoded.value as T;
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.read(`reading ${key}`, () => this.keyv.get(key))) as T | undefined;
  }

  /** Reads happen at start only: their errors name the file for the operator. */
  private async read<R>(what: string, run: () => Promise<R>): Promise<R> {
    try {
      return await run();
    } catch (error) {
      throw Errors.storage(`state file ${this.file} is unreadable (${what}: ${(error as Error).message}); restore it from a backup, or move it away to start with no guests`, { cause: error });
    }
  }

  /**
   * Commit `changes` together, each with its event; each owner's `apply`
   * runs once they are durable. A storage failure rejects with
   * HK_ERR_STORAGE and applies nothing; an error thrown by a `next` (a
   * refusal) is passed on as is. The client-facing message names the SQLite
   * error code, never the file.
   */
  change(...changes: KeyChange[]): Promise<void> {
    return this.group.write(changes).catch(storageError(this.file));
  }

  /**
   * Write a value that no owner holds in memory (tests, tools), with
   * `event` if given; durable when the promise resolves.
   */
  put(key: string, value: unknown, event?: EventDraft): Promise<void> {
    return this.change({ key, current: () => UNHELD, next: () => value, event: event && (() => event), apply: () => undefined });
  }

  /** An event that changes no row (plugin health); durable when the promise resolves. */
  record(event: EventDraft): Promise<void> {
    return this.group.write([], [event]).catch(storageError(this.file));
  }

  async close(): Promise<void> {
    // A write after this (a job failing after the shutdown deadline) is refused, so
    // no statement runs on the write connection while it closes.
    await this.group.close();
    await this.writer.close();
    await this.keyv.disconnect();
  }
}

/** The "current" value of a key no one holds: never equal to a new value, so it is always written. */
const UNHELD = Symbol('unheld');

function storageError(file: string): (error: unknown) => never {
  return (error) => {
    if (error instanceof HyperkernError) throw error;
    const code = (error as { code?: string }).code ?? 'unknown error';
    throw Errors.storage(`the agent could not write its state (${code}${code === 'SQLITE_FULL' ? ": the data dir's filesystem is full" : ''}); nothing was changed, retry later`, {
      cause: new Error(`writing ${file}: ${(error as Error).message}`, { cause: error }),
    });
  };
}
