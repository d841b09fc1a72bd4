/** The reference servers (bench/ref-*.ts) as their own processes. */
import path from 'node:path';
import { freePort, spawnNode, waitFor200, type Spawned } from './processes.js';

export type ReferenceKind = 'koa' | 'http';

export interface Reference {
  kind: ReferenceKind;
  url: string;
  proc: Spawned;
  stop(): Promise<void>;
}

/**
 * `dataFile`: for koa, a JSON array of guests to serve from a Map; for
 * http, the exact bytes to send for GET /guests.
 */
export async function startReference(kind: ReferenceKind, dataFile: string, workDir: string, probePath: string): Promise<Reference> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const script = path.resolve(`dist/bench/ref-${kind}.js`);
  const proc = spawnNode(script, [String(port), dataFile], path.join(workDir, `ref-${kind}.log`));
  try {
    await waitFor200(url + probePath, {}, 15_000, performance.now(), proc.exited);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return { kind, url, proc, stop: () => proc.stop(5000) };
}
