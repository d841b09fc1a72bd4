/**
 * The fleet link's waits: a sleep that its stop signal ends early, and a
 * wake-up that a guest change ends early.
 */

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** A wait that a notify ends early; a notify with nobody waiting is kept for the next wait. */
export class Wakeup {
  private pending = false;
  private release: (() => void) | undefined;

  notify(): void {
    this.pending = true;
    this.release?.();
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      this.release = done;
      function done() {
        clearTimeout(timer);
        self.release = undefined;
        self.pending = false;
        resolve();
      }
    });
  }
}
