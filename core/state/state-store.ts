/**
 * Durable state: one SQLite file in the data dir, reached through Keyv.
 * Keys are prefixed by kind ("guest:", "job:", "host:") in one table so that
 * one connection serialises all writes. WAL with synchronous=NORMAL: a
 * committed write survives a crash of the agent process (kill -9), which is
 * the guarantee the API makes; fsync per commit would only add power-loss
 * safety at a large cost per request.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { CoalescingWriter } from './coalescing-writer.js';
import { Errors } from '../errors.js';
import { GroupCommit, type Commit } from './group-commit.js';

export const STATE_FILE = 'hyperkern.sqlite';
const LOAD_PAGE_ROWS = 500;

export class StateStore {
  private readonly writer: CoalescingWriter<unknown>;

  private constructor(
    readonly file: string,
    private readonly sqlite: KeyvSqlite,
    private readonly keyv: Keyv,
  ) {
    // Rows keep Keyv's format ({"value":…} through Keyv's serializer), so
    // keyv.get and loadAll read them as before; only the commits are grouped.
    const serialize = keyv.serialize ?? JSON.stringify;
    const group = new GroupCommit((batch) => this.commit(batch));
    this.writer = new CoalescingWriter<unknown>(async (key, value) =>
      group.write(key, value === undefined ? undefined : await serialize({ value, expires: undefined })),
    );
  }

  /** One statement per kind of change, each its own transaction. */
  private async commit({ upserts, deletes }: Commit): Promise<void> {
    if (upserts.length > 0) {
      await this.sqlite.query(
        `INSERT INTO keyv (key, value) VALUES ${upserts.map(() => '(?, ?)').join(', ')} ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
        ...upserts.flat(),
      );
    }
    if (deletes.length > 0) {
      await this.sqlite.query(`DELETE FROM keyv WHERE key IN (${deletes.map(() => '?').join(', ')})`, ...deletes);
    }
  }

  static async open(dataDir: string): Promise<StateStore> {
    try {
      await mkdir(dataDir, { recursive: true });
    } catch (error) {
      throw Errors.storage(`cannot create data dir ${dataDir}: ${(error as NodeJS.ErrnoException).code}; choose another with --data-dir or HYPERKERN_DATA_DIR`, { cause: error });
    }
    const file = path.join(dataDir, STATE_FILE);
    const sqlite = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 10000, iterationLimit: 1000 } as ConstructorParameters<typeof KeyvSqlite>[0]);
    const keyv = new Keyv({ store: sqlite, namespace: '', useKeyPrefix: false });
    try {
      await sqlite.query('PRAGMA journal_mode=WAL');
      await sqlite.query('PRAGMA synchronous=NORMAL');
    } catch (error) {
      throw Errors.storage(`cannot open state file ${file}: ${(error as Error).message}`, { cause: error });
    }
    return new StateStore(file, sqlite, keyv);
  }

  private deserialize(text: string): unknown {
    return this.keyv.deserialize ? this.keyv.deserialize(text) : JSON.parse(text);
  }

  /** All values whose key starts with `prefix` (loaded once, at startup). */
  async loadAll<T>(prefix: string): Promise<Array<[string, T]>> {
    // In pages, by key: one query for every row made the SQLite driver hold
    // them all natively at once, and the process kept that memory for good.
    const out: Array<[string, T]> = [];
    let after = prefix;
    for (;;) {
      const rows = (await this.sqlite.query(
        `SELECT key, value FROM keyv WHERE key > ? AND key < ? ORDER BY key LIMIT ${LOAD_PAGE_ROWS}`,
        after,
        prefix + '\uffff',
      )) as Array<{ key: string; value: string }>;
      for (const row of rows) {
        // Keyv's own deserializer: its serializer escapes strings that start
        // with ':', which plain JSON.parse would hand back escaped.
        const decoded = (await this.deserialize(row.value)) as { value: T } | undefined;
        if (decoded) out.push([row.key.slice(prefix.length), decoded.value]);
      }
      if (rows.length < LOAD_PAGE_ROWS) return out;
      after = rows[rows.length - 1].key;
    }
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.keyv.get(key)) as T | undefined;
  }

  /** Durable once the promise resolves. */
  put(key: string, value: unknown): Promise<void> {
    return this.writer.put(key, value).catch((error) => {
      throw Errors.storage(`could not write ${key} to ${this.file}: ${(error as Error).message}`, { cause: error });
    });
  }

  delete(key: string): Promise<void> {
    return this.put(key, undefined);
  }

  async close(): Promise<void> {
    await this.writer.flush();
    await this.keyv.disconnect();
  }
}
