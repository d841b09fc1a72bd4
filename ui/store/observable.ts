/**
 * The stores' one mechanism: a version number and listeners, notified at
 * most once per animation frame however many changes arrived in it (100
 * events a second become at most one render per frame, not 100). A hidden
 * tab gets no frames; a timer flushes then, so a view is never left stale.
 */
import { useEffect, useState } from 'preact/hooks';

const pending = new Set<Observable>();
let scheduled = false;

function flush(): void {
  if (!scheduled) return;
  scheduled = false;
  const stores = [...pending];
  pending.clear();
  for (const store of stores) store.emit();
}

function schedule(store: Observable): void {
  pending.add(store);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(flush);
  setTimeout(flush, 250);
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
