/**
 * One agent per data dir. Two agents on one state file would overwrite
 * each other's acknowledged changes and run each other's queued jobs, so
 * the agent takes an exclusive lock on DATA_DIR/hyperkern.lock before it
 * touches anything else, and holds it while it runs.
 *
 * The lock is SQLite's own file lock (an fcntl lock, held by an open
 * EXCLUSIVE transaction that is never committed): the kernel drops it when
 * the process ends, however it ends (kill -9 included), so there is no
 * stale lock to clean up; and unlike flock() it is not inherited by the
 * QEMU or virsh processes the agent starts. The holder writes its PID to
 * hyperkern.pid next to it so that a refused agent can name it.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { Errors } from '../errors.js';

export const LOCK_FILE = 'hyperkern.lock';
export const PID_FILE = 'hyperkern.pid';

export class DataDirLock {
  private constructor(
    private readonly db: sqlite3.Database,
    private readonly pidFile: string,
  ) {}

  /** Takes the lock or fails at once, naming the holder and the data dir. */
  static async acquire(dataDir: string): Promise<DataDirLock> {
    try {
      await mkdir(dataDir, { recursive: true });
    } catch (error) {
      throw Errors.storage(`cannot create data dir ${dataDir}: ${(error as NodeJS.ErrnoException).code}; choose another with --data-dir or HYPERKERN_DATA_DIR`, { cause: error });
    }
    const file = path.join(dataDir, LOCK_FILE);
    const pidFile = path.join(dataDir, PID_FILE);
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const opened: sqlite3.Database = new sqlite3.Database(file, (error) => (error ? reject(error) : resolve(opened)));
    }).catch((error: Error) => {
      throw Errors.storage(`cannot open lock file ${file}: ${error.message}`, { cause: error });
    });
    // Fail at once instead of waiting for the holder.
    db.configure('busyTimeout', 0);
    try {
      await exec(db, 'PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE;');
    } catch (error) {
      await new Promise((resolve) => db.close(resolve));
      if ((error as { code?: string }).code !== 'SQLITE_BUSY') {
        throw Errors.storage(`cannot lock ${file}: ${(error as Error).message}`, { cause: error });
      }
      const holder = (await readFile(pidFile, 'utf8').catch(() => '')).trim();
      throw Errors.dataDirLocked(
        `data dir ${dataDir} is in use by another hyperkern agent${/^\d+$/.test(holder) ? ` (pid ${holder})` : ''}; stop it first, or give this one another --data-dir`,
      );
    }
    await writeFile(pidFile, `${process.pid}\n`);
    return new DataDirLock(db, pidFile);
  }

  async release(): Promise<void> {
    await rm(this.pidFile, { force: true });
    await new Promise((resolve) => this.db.close(resolve));
  }
}

function exec(db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.exec(sql, (error) => (error ? reject(error) : resolve())));
}
