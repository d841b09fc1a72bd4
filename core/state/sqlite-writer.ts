/**
 * The state file's write connection: the statements of every commit run
 * here, each prepared once and kept. A one-shot query (what Keyv's
 * connection offers) is two round trips to libuv's thread pool (prepare,
 * then run) and a finalize; a kept statement is one. A commit (BEGIN, its
 * rows, its events, COMMIT) took ~0.3 ms that way and ~0.1 ms this way,
 * with a far shorter tail on a loaded host, and every job commits three
 * times (queued, running, ended).
 *
 * Its own connection because Keyv's is out of reach; reads stay on Keyv's.
 * Both see one WAL database, and only this one writes once the store is open.
 */
import sqlite3 from 'sqlite3';

/**
 * Statements with more parameters than this run once and are finalized:
 * the multi-row statements of a burst (up to 1,000 rows) come in many
 * shapes, and kept ones would hold their memory for the agent's life.
 * At or below it there are about sixty shapes at most (1-16 rows
 * upserted, 1-32 keys deleted, 1-8 events inserted, and the fixed ones).
 */
const KEPT_MAX_PARAMS = 32;

export class SqliteWriter {
  private readonly kept = new Map<string, Promise<sqlite3.Statement>>();

  private constructor(private readonly db: sqlite3.Database) {}

  /** Opens `file` (made by the read connection, already in WAL mode) for writing. */
  static async open(file: string, busyTimeoutMs: number): Promise<SqliteWriter> {
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const opened: sqlite3.Database = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (error) => (error ? reject(error) : resolve(opened)));
    });
    db.configure('busyTimeout', busyTimeoutMs);
    const writer = new SqliteWriter(db);
    try {
      // Per connection: a commit is durable against a crash of the agent, not of the host (state-store.ts).
      await writer.run('PRAGMA synchronous=NORMAL');
      // 256 KiB of pages, as the read connection (issue 16: the OS page cache holds the file anyway).
      await writer.run('PRAGMA cache_size=-256');
    } catch (error) {
      await writer.close().catch(() => undefined);
      throw error;
    }
    return writer;
  }

  /** Runs one statement with `params`; rejects with SQLite's error (its `code`: SQLITE_FULL...). */
  async run(sql: string, params: unknown[] = []): Promise<void> {
    if (params.length > KEPT_MAX_PARAMS) {
      return new Promise((resolve, reject) => this.db.run(sql, params, (error) => (error ? reject(error) : resolve())));
    }
    const statement = await this.statement(sql);
    return new Promise((resolve, reject) => statement.run(params, (error) => (error ? reject(error) : resolve())));
  }

  /** Finalizes the kept statements and closes the connection. */
  async close(): Promise<void> {
    const statements = await Promise.allSettled(this.kept.values());
    this.kept.clear();
    for (const s of statements) if (s.status === 'fulfilled') await new Promise<void>((resolve) => s.value.finalize(() => resolve()));
    await new Promise<void>((resolve, reject) => this.db.close((error) => (error ? reject(error) : resolve())));
  }

  private statement(sql: string): Promise<sqlite3.Statement> {
    let statement = this.kept.get(sql);
    if (!statement) {
      statement = new Promise((resolve, reject) => {
        const prepared: sqlite3.Statement = this.db.prepare(sql, (error) => (error ? reject(error) : resolve(prepared)));
      });
      this.kept.set(sql, statement);
      // A statement that did not prepare (a full disk while reading the schema) is tried again next time.
      statement.catch(() => this.kept.delete(sql));
    }
    return statement;
  }
}
