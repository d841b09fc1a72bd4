/**
 * The taps an incoming copy (migration-target.ts) creates, listed in its run
 * dir, each before it is made. Until the prepare ends, the kernel's durable
 * record of the move holds the guest with no devices (none are this host's
 * yet), so an agent killed halfway through a prepare would restart knowing
 * the run dir but not the taps in it; the list lets the removal of the
 * uncommitted copy (at that restart, or the source's abort) take them too.
 * Only names this list holds are removed: on a host that runs both sides
 * (tests), the source's own tap must stay.
 */
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunDir } from './run-dir.js';
import { removeTap } from './taps.js';

const LIST = 'incoming-taps';

const listOf = (runDir: RunDir): string => path.join(runDir.dir, LIST);

/** Called before the tap is created: a kill between the two leaves a name to remove, never a tap unnamed. */
export async function noteIncomingTap(runDir: RunDir, tap: string): Promise<void> {
  await appendFile(listOf(runDir), `${tap}\n`);
}

/** Removes every tap the list names that still exists (removeTap refuses a name that is no interface name). */
export async function removeIncomingTaps(runDir: RunDir): Promise<void> {
  const text = await readFile(listOf(runDir), 'utf8').catch(() => '');
  for (const tap of new Set(text.split('\n').filter(Boolean))) await removeTap(tap);
}
