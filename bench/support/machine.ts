/**
 * What else the shared machine was doing during a run: the load average and
 * how many hypervisor and node processes were alive (other helpers' tests and
 * benches), so a RESULTS.md section says how loaded the numbers were.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

export function machineLoad(): string {
  const counts = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let comm: string;
    try {
      comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const kind = comm.startsWith('qemu-system') ? 'qemu-system' : comm === 'node' || comm === 'MainThread' ? 'node' : comm === 'libvirtd' || comm === 'virtqemud' ? 'libvirtd' : undefined;
    if (kind) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  const procs = ['qemu-system', 'libvirtd', 'node'].map((k) => `${counts.get(k) ?? 0} ${k}`).join(', ');
  return `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; processes alive: ${procs}`;
}
