/**
 * mistify-agent-libvirt reports a guest's state by libvirt's names
 * (`StateNames` in its libvirt.go): running, blocked, paused, shutdown,
 * shutoff, crashed, suspended (PM-suspended) and unknown. hyperkern's
 * lifecycle (core/contract/lifecycle.ts) has its own, and decides from
 * them which action may run: a guest left `shutoff` could never be started
 * again. A lifecycle answer's state is read into the kernel's names here;
 * a name that is already the kernel's passes unchanged.
 */
import type { GuestState } from '../../core/contract/index.js';

const LIBVIRT_STATES: Readonly<Record<string, GuestState>> = {
  // Running, but waiting on a resource: for the lifecycle, running.
  blocked: 'running',
  paused: 'suspended',
  shutoff: 'off',
  // VIR_DOMAIN_NOSTATE: libvirt cannot tell.
  unknown: 'error',
};

/** The answer of a lifecycle method with its guest's state in the kernel's names; anything else as it is. */
export function withKernelState(result: unknown): unknown {
  if (typeof result !== 'object' || result === null) return result;
  const guest = (result as { guest?: unknown }).guest;
  if (typeof guest !== 'object' || guest === null) return result;
  const state = (guest as { state?: unknown }).state;
  if (typeof state !== 'string' || !Object.hasOwn(LIBVIRT_STATES, state)) return result;
  return { ...result, guest: { ...guest, state: LIBVIRT_STATES[state] } };
}
