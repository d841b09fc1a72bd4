/**
 * Work on one guest that must not overlap (two snapshot operations on the
 * same disk files, say) while work on other guests runs alongside: each
 * guest's work starts once that guest's previous work has ended, whether it
 * succeeded or failed. Outside the kernel's job queue on purpose: requests
 * that run in the request (list, download) and jobs share it.
 */
export class PerGuestSerial {
  /** Per guest, the end of its last queued work (never rejects). */
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Run `work` for `guestId` after the work queued for it before; answers what `work` answers. */
  run<T>(guestId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(guestId) ?? Promise.resolve();
    const next = previous.then(work);
    const tail = next.catch(() => {});
    this.tails.set(guestId, tail);
    void tail.then(() => {
      if (this.tails.get(guestId) === tail) this.tails.delete(guestId);
    });
    return next;
  }

  /** Guests with work queued or running. */
  get busyGuests(): number {
    return this.tails.size;
  }
}
