/**
 * Finding a guest's QEMU again when the agent starts: by its pidfile and
 * command line; attached (QMP, console) when it still runs, the guest
 * marked off when it is gone. Guests outlive the agent.
 */
import { stat } from 'node:fs/promises';
import { removeStaleExports, type Guest, type Logger } from '../../core/contract/index.js';
import { Machine, type MachineListener } from './machine.js';
import type { QemuConsoles } from './qemu-consoles.js';
import { findGuestProcess } from './qemu-process.js';
import { RunDir } from './run-dir.js';

/** States in which a QEMU process should exist. */
const RUNNING_STATES = new Set(['running', 'suspended']);

export interface ReattachDeps {
  dataDir: string;
  machines: Map<string, Machine>;
  listener: MachineListener;
  consoles: QemuConsoles;
  log: Logger;
  observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): void;
}

export async function reattach(guest: Guest, deps: ReattachDeps): Promise<void> {
  const runDir = new RunDir(deps.dataDir, guest.id);
  if (!(await isDirectory(runDir.dir))) return; // not one of ours (or never created)
  await removeStaleExports(runDir.dir); // downloads cut off by the agent's death
  const pid = await findGuestProcess(runDir);
  if (pid) {
    let machine: Machine | undefined;
    try {
      machine = await Machine.attach(guest.id, runDir, pid, deps.listener);
      deps.machines.set(guest.id, machine);
      await deps.consoles.connect(guest.id);
      let status = await machine.status();
      // A start cut off before its `cont`: the console is connected now, let it boot.
      if (status === 'prelaunch') status = await machine.qmp.execute('cont').then(() => 'running');
      const state = status === 'paused' ? 'suspended' : 'running';
      deps.log.info({ guest: guest.id, pid, state }, 'reattached to running QEMU');
      if (guest.state !== state) deps.observe(guest.id, { state }, `QEMU process ${pid} found ${state} at agent start`);
      return;
    } catch (error) {
      if (machine && deps.machines.get(guest.id) === machine) deps.machines.delete(guest.id);
      machine?.detach();
      deps.log.error({ guest: guest.id, pid, err: (error as Error).message }, 'QEMU process runs but its QMP socket does not answer');
      deps.observe(guest.id, { state: 'error' }, `QEMU process ${pid} runs but QMP does not answer: ${(error as Error).message}`);
      return;
    }
  }
  if (RUNNING_STATES.has(guest.state)) {
    deps.log.warn({ guest: guest.id, state: guest.state }, 'QEMU process is gone; marking the guest off');
    deps.observe(guest.id, { state: 'off' }, 'QEMU process gone when the agent started');
  }
}

export async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}
