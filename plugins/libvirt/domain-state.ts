/**
 * libvirt's domain states as hyperkern guest states. `virsh domstate
 * --reason` prints e.g. "running (booted)", "paused (user)",
 * "shut off (shutdown)", "shut off (destroyed)".
 */
import type { GuestState } from '../../core/contract/index.js';

export interface DomainState {
  /** libvirt's state words, e.g. "shut off". */
  state: string;
  /** libvirt's reason, e.g. "shutdown", "destroyed". */
  reason: string;
}

export function parseDomState(output: string): DomainState {
  const line = output.trim().split('\n')[0] ?? '';
  const match = /^(.*?)\s*\(([^)]*)\)\s*$/.exec(line);
  return match ? { state: match[1].trim(), reason: match[2].trim() } : { state: line.trim(), reason: '' };
}

/**
 * The guest state for a domain state. A guest that powered itself off (or
 * was shut down through ACPI) is "shutdown"; one whose plug was pulled or
 * that never ran is "off" (as when QEMU's process dies in the QEMU backend);
 * one whose kernel panicked (libvirt's "crashed") is "crashed", as there.
 */
export function guestStateOf({ state, reason }: DomainState): GuestState {
  switch (state) {
    case 'running':
    case 'idle':
    case 'blocked':
    case 'in shutdown':
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'suspended';
    case 'shut off':
      return reason === 'shutdown' ? 'shutdown' : 'off';
    case 'crashed':
      return 'crashed';
    default:
      return 'error';
  }
}

const KNOWN = new Set(['running', 'idle', 'blocked', 'in shutdown', 'paused', 'pmsuspended', 'shut off', 'crashed', 'no state']);

/** Whether virsh printed a state at all (and not, say, a stray line of other output). */
export function isKnownState({ state }: DomainState): boolean {
  return KNOWN.has(state);
}

/** States in which the domain has a running QEMU. */
export function isActive({ state }: DomainState): boolean {
  return state !== 'shut off' && state !== '';
}
