/** A test's own look into a SQLite file (the agent's state file), on a connection of its own. */
import sqlite3 from 'sqlite3';

/** Runs one statement and answers its rows; read-only unless the test means to change the file. */
export function sqliteQuery<T>(file: string, sql: string, mode: 'read-only' | 'read-write' = 'read-only'): Promise<T[]> {
  const flags = mode === 'read-only' ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, flags, (error) => {
      if (error) return reject(error);
      db.all(sql, (err, rows) => {
        db.close();
        if (err) reject(err);
        else resolve(rows as T[]);
      });
    });
  });
}
