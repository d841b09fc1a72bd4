/**
 * Ordered, coalescing writes per key. Two writes of the same key never race
 * (the SQLite driver may run queued statements out of order across its
 * thread pool), and a burst of updates to one key (a job going Queued ->
 * Running -> Complete) costs at most two writes: the one in flight and the
 * latest value. Every caller's promise resolves only once a write that
 * includes its value has committed, so an acknowledged change is durable.
 * Values coalesce, events do not: every event put with a value is written,
 * in order, with the value that includes its change.
 */
import type { EventDraft } from '../events/kernel-event.js';

export type WriteFn<V> = (key: string, value: V | undefined, events: EventDraft[]) => Promise<void>;

interface Slot<V> {
  inFlight: boolean;
  /** The newest value not yet being written, with everyone waiting on it. */
  next?: { value: V | undefined; events: EventDraft[]; waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> };
}

export class CoalescingWriter<V> {
  private readonly slots = new Map<string, Slot<V>>();

  constructor(private readonly write: WriteFn<V>) {}

  /** Persist `value` under `key`; undefined deletes the key. */
  put(key: string, value: V | undefined, event?: EventDraft): Promise<void> {
    return new Promise((resolve, reject) => {
      let slot = this.slots.get(key);
      if (!slot) {
        slot = { inFlight: false };
        this.slots.set(key, slot);
      }
      if (slot.next) {
        slot.next.value = value;
        if (event) slot.next.events.push(event);
        slot.next.waiters.push({ resolve, reject });
      } else {
        slot.next = { value, events: event ? [event] : [], waiters: [{ resolve, reject }] };
      }
      if (!slot.inFlight) this.drain(key, slot);
    });
  }

  /** Writes still pending, for shutdown. */
  get pendingKeys(): number {
    return this.slots.size;
  }

  /** Resolves when nothing is pending. */
  async flush(): Promise<void> {
    while (this.slots.size > 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private drain(key: string, slot: Slot<V>): void {
    const batch = slot.next;
    if (!batch) {
      this.slots.delete(key);
      return;
    }
    slot.next = undefined;
    slot.inFlight = true;
    this.write(key, batch.value, batch.events).then(
      () => {
        for (const w of batch.waiters) w.resolve();
      },
      (error) => {
        for (const w of batch.waiters) w.reject(error);
      },
    ).finally(() => {
      slot.inFlight = false;
      this.drain(key, slot);
    });
  }
}
