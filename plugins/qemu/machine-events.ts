/**
 * What QEMU reports on its own, turned into the guest's state: QMP events
 * (paused, resumed, reset, panicked) and the process's exit, recorded in
 * order through the plugin's observe queue; a reset is also told to the
 * guest's console (the kernel makes it a console.reset event).
 */
import type { Guest, Logger } from '../../core/contract/index.js';
import type { Machine, MachineListener, ShutdownInfo } from './machine.js';
import type { QemuConsoles } from './qemu-consoles.js';
import type { QmpEvent } from './qmp-client.js';

export interface MachineEventDeps {
  /** The attached machines: events of one no longer attached are ignored. */
  machines: Map<string, Machine>;
  consoles: QemuConsoles;
  log: Logger;
  observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): void;
  /** Resolves once every observation made so far is recorded. */
  drained(): Promise<void>;
}

export function machineEvents(deps: MachineEventDeps): MachineListener {
  return {
    onEvent: (machine: Machine, event: QmpEvent) => {
      if (deps.machines.get(machine.guestId) !== machine) return;
      const log = { guest: machine.guestId, event: event.event, data: event.data };
      switch (event.event) {
        case 'STOP':
          deps.log.info(log, 'QEMU paused the guest');
          deps.observe(machine.guestId, { state: 'suspended' }, 'QEMU event STOP');
          break;
        case 'RESUME':
          if (machine.startingUp) {
            machine.startingUp = false;
            break;
          }
          deps.log.info(log, 'QEMU resumed the guest');
          deps.observe(machine.guestId, { state: 'running' }, 'QEMU event RESUME');
          break;
        case 'GUEST_PANICKED':
          deps.log.error(log, 'the guest OS panicked');
          break;
        case 'RESET':
          deps.log.info(log, 'QEMU event RESET');
          deps.consoles.reset(machine.guestId, `reset (${String(event.data?.reason ?? 'unknown')})`);
          break;
        case 'SHUTDOWN':
        case 'POWERDOWN':
          // SHUTDOWN is followed by the process's exit, which sets the state.
          deps.log.info(log, `QEMU event ${event.event}`);
          break;
        default:
          deps.log.debug(log, 'QEMU event');
      }
    },
    onExit: async (machine: Machine, shutdown: ShutdownInfo | undefined) => {
      if (deps.machines.get(machine.guestId) !== machine) return;
      deps.machines.delete(machine.guestId);
      deps.consoles.disconnect(machine.guestId);
      // guest-panic comes from the pvpanic device: the guest kernel crashed.
      const state = shutdown?.reason === 'guest-panic' ? 'crashed' : shutdown?.guest ? 'shutdown' : 'off';
      const reason = shutdown ? `QEMU exited after SHUTDOWN (${shutdown.reason})` : 'QEMU process exited without a SHUTDOWN event (killed or crashed)';
      deps.log.info({ guest: machine.guestId, pid: machine.pid, state, reason }, 'QEMU exited');
      deps.observe(machine.guestId, { state }, reason);
      await deps.drained();
    },
  };
}
