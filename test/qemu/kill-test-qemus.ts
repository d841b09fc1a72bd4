/** Cleanup for QEMU tests that kills only the QEMU processes a test started. */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { removeDir, type RunningAgent } from '../support/agent.js';

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

/**
 * The end of a QEMU test's agent: stopped (guests left running, as the
 * plugin does), then every QEMU of its data dir killed and the dir removed.
 */
export async function disposeQemuTestAgent(agent: RunningAgent | undefined): Promise<void> {
  if (!agent) return;
  await agent.stop();
  await killTestQemus(path.join(agent.dataDir, 'plugins', 'qemu'));
  await removeDir(agent.dataDir);
}
