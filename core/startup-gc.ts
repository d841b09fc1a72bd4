/**
 * Once the agent serves, one full, compacting collection of what start-up
 * left behind: the rows read from SQLite, their texts and the parsed
 * objects of loading. V8 would keep those pages (and the old generation's
 * holes between survivors) until its heap grew enough for a full
 * collection on its own, which a read-mostly agent may never reach. At
 * 10,000 guests it held the old generation at 27 MiB committed for 20 MiB
 * live; compacted, 20 MiB (bench/HISTORY.md, issue 26).
 *
 * `gc` exists only with --expose-gc (core/runtime-flags.ts); compaction on
 * this one collection only: V8 compacts by its own heuristics otherwise,
 * which leave sparse pages committed.
 */
import v8 from 'node:v8';

export function releaseStartupGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return;
  v8.setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
}
