/**
 * How long tests wait on TCG guests. On an idle host the tiny guest reaches
 * init in a few seconds; on a loaded 2-core host (other QEMU guests, the
 * whole suite, stress-ng) many times that, and a fixed 20 s wait failed
 * there. So every wait on a guest (boot, reboot, ACPI power-off, a state
 * change) is its idle-host value scaled by how much slower than
 * REFERENCE_BOOT_MS the slowest boot measured in this run was, and never
 * less than the idle value. The first boot of a run, before anything is
 * measured, gets FIRST_BOOT_MS. Waits end as soon as the guest gets there,
 * so generous bounds cost nothing when things work.
 */
/** Boot of the tiny guest under TCG on an idle 2-core host (measured: about 2-4 s). */
export const REFERENCE_BOOT_MS = 4000;
/** The first boot of a run: nothing measured yet, so generous. */
export const FIRST_BOOT_MS = 180_000;
/** Guest-side bounds the plugins enforce (ACPI shutdown, reboot), in seconds: generous for the same reason. */
export const GUEST_ACTION_SECONDS = 120;

let slowestBootMs = 0;

/** Record a measured boot (start to init) of a test guest. */
export function recordBoot(ms: number): number {
  slowestBootMs = Math.max(slowestBootMs, ms);
  return ms;
}

/** `idleMs` scaled to the load this run measured. */
export function underLoad(idleMs: number): number {
  return Math.round(idleMs * Math.max(1, slowestBootMs / REFERENCE_BOOT_MS));
}
