/**
 * Once the agent serves, one memory-reducing collection of what start-up
 * left behind: the rows read from SQLite, their texts, the parsed objects
 * of loading, and the young generation start-up grew.
 *
 * Loading 10,000 guests grows V8's young generation to its maximum
 * (2 × 16 MiB semi-spaces, all resident) because so much of what loading
 * allocates survives; V8 shrinks it back only when its memory reducer
 * notices a quiet heap, seconds later and never while clients keep asking.
 * A plain `gc()` keeps the semi-spaces at their size; V8's low-memory
 * collection (what the inspector's HeapProfiler.collectGarbage runs) also
 * compacts the old generation, shrinks the young one to its initial 1 MiB
 * and gives the freed pages back. The young generation then grows again
 * only as far as the load asks (bench/HISTORY.md, issue 26 item 8).
 *
 * In-process inspector session, no port opened; disconnected right after.
 */
import type { Session } from 'node:inspector';

export async function releaseStartupGarbage(): Promise<void> {
  let session: Session;
  try {
    session = new (await import('node:inspector')).Session();
    session.connect();
  } catch {
    return; // a Node built without the inspector: V8's memory reducer still gets there later
  }
  try {
    await new Promise<void>((resolve) => session.post('HeapProfiler.collectGarbage', () => resolve()));
  } finally {
    session.disconnect();
  }
}
