/**
 * Why the data dir cannot hold the agent's state, as one line an operator
 * can act on: a read-only file system (a disk the kernel remounted
 * read-only after I/O errors), a full one, or a dir or state file the
 * agent's user may not write. Checked first at start (a probe file written
 * and removed, each existing state file checked for writing), so that the
 * answer names the cause and the fix instead of whichever SQLite or Node
 * call happened to fail first; faults that appear later in the boot (a
 * disk that fills between the probe and SQLite) are explained the same way.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Errors, type HyperkernError } from '../errors.js';
import { LOCK_FILE, PID_FILE } from './data-dir-lock.js';
import { STATE_FILE } from './state-store.js';

/** Files the agent writes in the data dir: each must be writable if it exists. */
const STATE_FILES = [STATE_FILE, `${STATE_FILE}-wal`, `${STATE_FILE}-shm`, LOCK_FILE, PID_FILE];
/** What the probe writes: one page, so that a file system with no block left fails here. */
const PROBE_BYTES = 4096;
const ELSEWHERE = 'or choose another with --data-dir or HYPERKERN_DATA_DIR';

const READ_ONLY = new Set(['EROFS']);
const FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);
const DENIED = new Set(['EACCES', 'EPERM']);
/** SQLite's codes say only that it could not write or open: the probe tells why. */
const SQLITE_VAGUE = new Set(['SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR', 'SQLITE_PERM']);

/** Throws one line naming the dir, the cause and the fix if the data dir cannot hold state. */
export async function checkDataDir(dataDir: string): Promise<void> {
  const fault = await probe(dataDir);
  if (fault) throw fault;
}

/**
 * The one-line explanation of a boot failure that the data dir caused, or
 * undefined when the error is about something else (a plugin's /dev/kvm).
 */
export async function explainDataDirFault(dataDir: string, error: unknown): Promise<HyperkernError | undefined> {
  for (let e = error; e instanceof Error; e = e.cause) {
    const { code, path: file } = e as NodeJS.ErrnoException;
    if (typeof code !== 'string') continue;
    if (SQLITE_VAGUE.has(code)) return (await probe(dataDir)) ?? undefined;
    const inside = typeof file === 'string' && isInside(dataDir, file);
    if (FULL.has(code) && (inside || code.startsWith('SQLITE_'))) return fault(dataDir, code, dataDir);
    if ((READ_ONLY.has(code) || DENIED.has(code)) && inside) return fault(dataDir, code, file!);
  }
  return undefined;
}

async function probe(dataDir: string): Promise<HyperkernError | undefined> {
  const made = await makeDir(dataDir);
  if (made) return made;
  const probeFile = path.join(dataDir, `.hyperkern-write-check-${process.pid}`);
  try {
    const handle = await open(probeFile, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
    try {
      await handle.write(Buffer.alloc(PROBE_BYTES));
    } finally {
      await handle.close();
    }
  } catch (error) {
    return fault(dataDir, codeOf(error), dataDir);
  } finally {
    await rm(probeFile, { force: true }).catch(() => undefined);
  }
  for (const name of STATE_FILES) {
    const file = path.join(dataDir, name);
    try {
      // access(), not open(): closing any descriptor of a file drops every
      // fcntl lock this process holds on it, SQLite's and the data-dir lock's.
      await access(file, constants.W_OK);
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') return fault(dataDir, codeOf(error), file);
    }
  }
  return undefined;
}

/**
 * mkdir -p, with the real reason when it fails: a recursive mkdir on a
 * read-only file system reports ENOENT, so the first missing component
 * is made on its own to learn why.
 */
async function makeDir(dataDir: string): Promise<HyperkernError | undefined> {
  try {
    await mkdir(dataDir, { recursive: true });
    return undefined;
  } catch (error) {
    let parent = path.dirname(dataDir);
    let missing = dataDir;
    while (parent !== missing && !(await stat(parent).then((s) => s.isDirectory(), () => false))) {
      missing = parent;
      parent = path.dirname(parent);
    }
    const reason = await mkdir(missing).then(() => codeOf(error), codeOf);
    return fault(dataDir, reason, parent);
  }
}

async function fault(dataDir: string, code: string, file: string): Promise<HyperkernError> {
  if (READ_ONLY.has(code)) {
    return Errors.dataDirUnusable(
      `data dir ${dataDir} is on a read-only file system (${code}): remount it read-write (if the kernel remounted it after disk errors, see dmesg and fsck it first), ${ELSEWHERE}`,
    );
  }
  if (FULL.has(code)) {
    return Errors.dataDirUnusable(`data dir ${dataDir} has no space left (${code}): free space on its file system (df ${dataDir}), ${ELSEWHERE}`);
  }
  if (DENIED.has(code)) {
    const uid = process.getuid?.() ?? -1;
    const owner = await stat(file).then((s) => `owned by uid ${s.uid}, mode ${(s.mode & 0o7777).toString(8).padStart(4, '0')}`, () => 'not readable');
    const what = file === dataDir ? 'it' : file;
    return Errors.dataDirUnusable(
      `data dir ${dataDir} is not writable by this agent (uid ${uid}, ${code}): ${what} is ${owner}; chown -R ${uid} ${dataDir} or run the agent as its owner, ${ELSEWHERE}`,
    );
  }
  return Errors.dataDirUnusable(`data dir ${dataDir} cannot be written (${code}): ${ELSEWHERE}`);
}

function codeOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' ? code : String((error as Error)?.message ?? error);
}

function isInside(dir: string, file: string): boolean {
  const relative = path.relative(dir, path.resolve(file));
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
