/**
 * The stores' one mechanism: a version number and listeners, notified in
 * an animation frame, at most every 100 ms, however many changes arrived
 * meanwhile (100 events a second become at most 10 renders, not 100). A
 * hidden tab gets no frames; a timer flushes then, so a view is never left
 * stale.
 */
import { useEffect, useState } from 'preact/hooks';

const pending = new Set<Observable>();
let scheduled = false;
let fallback: ReturnType<typeof setTimeout> | undefined;
let lastFlush = 0;

/**
 * At most one flush per MIN_INTERVAL_MS: under a stream of events (100 a
 * second and more) each redraw of a 1,000-row view then has the changes of
 * several frames, and the page keeps most of its frames for scrolling and
 * typing. A lone change still shows within a frame or two.
 */
const MIN_INTERVAL_MS = 100;

function flush(): void {
  if (!scheduled) return;
  const now = performance.now();
  if (now - lastFlush < MIN_INTERVAL_MS) {
    requestAnimationFrame(flush);
    return;
  }
  scheduled = false;
  clearTimeout(fallback);
  fallback = undefined;
  lastFlush = now;
  const stores = [...pending];
  pending.clear();
  for (const store of stores) store.emit();
}

function schedule(store: Observable): void {
  pending.add(store);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(flush);
  // A hidden tab gets no frames: flush on a timer then (one armed at a time).
  fallback ??= setTimeout(() => {
    fallback = undefined;
    lastFlush = 0;
    flush();
  }, 500);
}

export class Observable {
  private readonly listeners = new Set<() => void>();
  /** Grows with every change; views compare it to skip work. */
  version = 0;

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Marks a change; listeners hear of it in the next frame. */
  protected changed(): void {
    this.version++;
    schedule(this);
  }

  /** Called by the frame scheduler only. */
  emit(): void {
    for (const listener of this.listeners) listener();
  }
}

/** Re-renders the calling component whenever `store` changed (once per frame at most). */
export function useStore<S extends Observable>(store: S): S {
  const [, setVersion] = useState(store.version);
  useEffect(() => {
    setVersion(store.version);
    return store.subscribe(() => setVersion(store.version));
  }, [store]);
  return store;
}
