/**
 * A real SQLite state store in a temp dir of its own for each test of the
 * suite that calls this (in its describe body): opened before each test,
 * closed and removed after it. A test may close and reopen `store` on `dir`
 * (a restart); whatever is open at the end is closed.
 */
import { StateStore } from '../../core/state/state-store.js';
import { makeTempDir, removeDir } from './agent.js';

export interface FreshStateStore {
  dir: string;
  store: StateStore;
  /** Closes the store and opens the same file again, as a restarted agent does. */
  reopen(): Promise<StateStore>;
}

export function freshStateStoreEachTest(): FreshStateStore {
  const state = {
    async reopen() {
      await state.store.close();
      state.store = await StateStore.open(state.dir);
      return state.store;
    },
  } as FreshStateStore;
  beforeEach(async () => {
    state.dir = await makeTempDir();
    state.store = await StateStore.open(state.dir);
  });
  afterEach(async () => {
    await state.store.close();
    await removeDir(state.dir);
  });
  return state;
}
