/**
 * A poll loop's sleep that QEMU's events cut short. The migration's waits
 * (a mirror READY, the RAM copy completed, a mirror ended) end on QMP
 * events (BLOCK_JOB_READY, MIGRATION, BLOCK_JOB_COMPLETED), so their end is
 * seen as it happens and not up to a poll period late; the loop still reads
 * QEMU's state after each wake-up (the event only says "look now"), and the
 * period's timeout keeps progress current and covers an event that never
 * comes. Listening starts at construction: an event that arrives while the
 * loop is busy between two sleeps makes the next sleep return at once.
 */
import type { QmpClient, QmpEvent } from './qmp-client.js';

export class QmpWakeup {
  private woken = false;
  private wake?: () => void;
  private readonly onEvent = (event: QmpEvent): void => {
    if (!this.wakes(event)) return;
    this.woken = true;
    this.wake?.();
  };
  // QEMU gone: nothing more will come; the loop's next query says so.
  private readonly onClose = (): void => {
    this.woken = true;
    this.wake?.();
  };

  constructor(
    private readonly qmp: QmpClient,
    private readonly wakes: (event: QmpEvent) => boolean,
  ) {
    qmp.on('event', this.onEvent);
    qmp.once('close', this.onClose);
  }

  /** Resolves after `ms`, or at once when a waking event came since the last sleep; rejects on abort. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new Error('cancelled'));
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.wake = undefined;
        this.woken = false;
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => done(new Error('cancelled'));
      const timer = setTimeout(() => done(), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.wake = () => done();
    });
  }

  dispose(): void {
    this.qmp.removeListener('event', this.onEvent);
    this.qmp.removeListener('close', this.onClose);
    this.wake?.();
  }

}
