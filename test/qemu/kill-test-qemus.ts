/** Cleanup for QEMU tests that kills only the QEMU processes a test started. */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * Kills, by pid, every QEMU whose pidfile is under `dataDir` (the test's
 * own guests only; other people's QEMU on this host are left alone).
 */
export async function killTestQemus(dataDir: string): Promise<number[]> {
  const killed: number[] = [];
  const dirs = await readdir(dataDir).catch(() => [] as string[]);
  for (const dir of dirs) {
    const pidFile = path.join(dataDir, dir, 'qemu.pid');
    const pid = Number.parseInt(await readFile(pidFile, 'utf8').catch(() => ''), 10);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes(pidFile)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      /* already gone */
    }
  }
  return killed;
}
