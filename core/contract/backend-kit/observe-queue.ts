/**
 * What a hypervisor reports on its own (the guest paused, its process
 * exited, a domain event) reaches the kernel through `GuestDirectory.observe`.
 * Reports must land in the order they happened, and a report that first
 * reads the guest (is it still ours, what state did the job leave) must not
 * interleave with the next: so they run one at a time, in order. A report
 * that fails is logged and does not stop the ones after it.
 */
import PQueue from 'p-queue';
import type { Guest } from '../wire-types.js';
import type { GuestDirectory, Logger } from '../plugin-api.js';

export class ObserveQueue {
  private readonly queue = new PQueue({ concurrency: 1 });

  /** `source` names the hypervisor in the log line of a failed report ("QEMU", "libvirt"). */
  constructor(
    private readonly guests: GuestDirectory,
    private readonly log: Logger,
    private readonly source: string,
  ) {}

  /** Record `change` of guest `id` once the reports before it are recorded. */
  observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): void {
    this.enqueue(() => this.guests.observe(id, change, reason), { guest: id, change });
  }

  /** Run `report` (which may read guests and observe several) once the reports before it are done. */
  enqueue(report: () => Promise<void>, context: Record<string, unknown> = {}): void {
    this.queue.add(report).catch((error: Error) => this.log.error({ ...context, err: error.message }, `could not record a state change ${this.source} reported`));
  }

  /** Resolves once every report queued so far (and any queued meanwhile) is done. */
  drained(): Promise<void> {
    return this.queue.onIdle();
  }
}
