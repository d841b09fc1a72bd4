/**
 * Guests for the cases: created through the agent's own API (POST /guests
 * under autocannon), so the state on disk is exactly what clients produce.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AUTH, waitIdle, type BenchAgent } from './agent.js';
import { runLoad, type LoadResult } from './autocannon.js';

/**
 * A create body giving a stored guest of about 430 bytes once the simulator
 * has created it (one NIC, one disk, a name in metadata). The body is the
 * same for every create (autocannon's -I id replacement sends a wrong
 * Content-Length), so the names repeat; ids, MACs and devices differ.
 */
export const GUEST_BODY = JSON.stringify({
  image: 'debian',
  memory: 1024,
  cpu: 2,
  nics: [{ network: 'br0' }],
  disks: [{ size: 10240 }],
  metadata: { name: 'bench' },
});

/** POSTs `count` creates, 50 connections; the autocannon result. */
export function postGuests(agent: { url: string }, count: number, connections = 50): Promise<LoadResult> {
  return runLoad({
    url: `${agent.url}/guests`,
    method: 'POST',
    body: GUEST_BODY,
    headers: { ...AUTH, 'content-type': 'application/json' },
    connections: Math.min(connections, count),
    amount: count,
    timeoutMs: 120_000,
  });
}

export interface Fleet {
  ids: string[];
  /** GET /guests as the agent sent it. */
  listText: string;
  /** Files for the reference servers. */
  guestsFile: string;
  listFile: string;
}

/** Creates `count` guests and waits until every create job ended. */
export async function seed(agent: BenchAgent, count: number): Promise<void> {
  const result = await postGuests(agent, count);
  if (result.ok !== count) throw new Error(`seeding ${count} guests: only ${result.ok} accepted (${JSON.stringify(result.statusCodes)})`);
  await waitIdle(agent, 120_000);
}

/** Reads the agent's guest list and writes it where reference servers read it. */
export async function snapshot(agent: BenchAgent, workDir: string, label: string): Promise<Fleet> {
  const res = await fetch(`${agent.url}/guests`, { headers: AUTH });
  const listText = await res.text();
  const guests = JSON.parse(listText) as Array<{ id: string }>;
  const guestsFile = path.join(workDir, `${label}.guests.json`);
  const listFile = path.join(workDir, `${label}.list.bin`);
  await writeFile(guestsFile, listText);
  await writeFile(listFile, listText);
  return { ids: guests.map((g) => g.id), listText, guestsFile, listFile };
}

/** Starts every guest (bounded concurrency), then waits for the jobs. */
export async function startAll(agent: BenchAgent, ids: string[]): Promise<void> {
  let next = 0;
  const failures: string[] = [];
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      const res = await agent.post(`/guests/${id}/start`);
      if (res.status !== 202) failures.push(`${id}: ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  if (failures.length) throw new Error(`start refused for ${failures.length} guests, e.g. ${failures[0]}`);
  await waitIdle(agent, 120_000);
}
