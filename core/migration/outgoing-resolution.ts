/**
 * Deciding who owns a guest the source sent, and making it so
 * (docs/migration.md): undoing a move that has not reached `switching`,
 * asking the target for the commit and, when no answer says whether it
 * happened, asking it again with `abort`, whose answer is final; removing
 * the source's copy once the target has it. A restarted agent resolves its
 * records here before it takes jobs; a move in doubt (the target cannot be
 * reached) is asked again every few seconds, the guest paused meanwhile.
 */
import { messageOf } from '../errors.js';
import type { KeyChange } from '../state/state-store.js';
import type { Guest } from '../contract/wire-types.js';
import { backendCall } from './migration-backend.js';
import type { SourceRecord } from './migration-records.js';
import type { OutgoingDeps } from './outgoing.js';
import { callPeer, PeerRefused, PeerUnreachable } from './peer-client.js';

/** Who owns the guest, as far as this agent can tell. */
type Owner = 'source' | 'target' | 'unknown';

/** How long a job waits for a target in doubt before it leaves the question to the background. */
const IN_DOUBT_WAIT_MS = 120_000;
const RETRY_MS = 3000;

export class OutgoingResolution {
  private timer?: NodeJS.Timeout;
  private resolving = false;

  constructor(private readonly deps: OutgoingDeps) {}

  /**
   * Before `switching`: QEMU's copies cancelled and the guest resumed here
   * first (it owns it), then the target told to drop its copy (best effort:
   * it drops it on its own too, at its start or when it finds the move gone).
   */
  async undo(record: SourceRecord, guest: Guest | undefined, reason: string): Promise<void> {
    if (guest) {
      const migrator = await this.deps.backends.of(guest);
      await backendCall('undoing the move', () => migrator.abortOutgoing(guest, record.wasRunning));
    }
    await callPeer(record.target, { method: 'POST', path: `/migrations/${record.id}/abort`, timeoutMs: 15_000 }).catch((error: unknown) => {
      if (!(error instanceof PeerRefused && error.status === 404)) {
        this.deps.log.warn({ migration: record.id, err: messageOf(error) }, 'could not tell the target to drop its copy; it drops it when it finds the move gone');
      }
    });
    await this.deps.records.remove(record.id);
    this.deps.log.warn({ migration: record.id, guest: record.guestId, reason }, 'move undone; the guest stays on this host');
  }

  /**
   * `switching`: asks the target to commit. Resolves with the guest as the
   * target holds it once it owns it; throws once it is clear the target
   * will not (the move undone) or after waiting for an answer in vain (the
   * question left to the background, the guest paused here).
   */
  async switchOver(record: SourceRecord, guest: Guest): Promise<Guest | undefined> {
    try {
      const answer = await callPeer<{ phase?: string; guest?: Guest }>(record.target, { method: 'POST', path: `/migrations/${record.id}/commit`, timeoutMs: 60_000 });
      // Only the protocol's answer hands the guest over; anything else (an empty 2xx from
      // whatever answers on that port) says nothing, and the target is asked.
      if (answer?.phase === 'committed') return answer.guest;
      this.deps.log.warn({ migration: record.id }, 'the target answered the commit outside the protocol; asking it whether it took the guest');
    } catch (error) {
      this.deps.log.warn({ migration: record.id, err: messageOf(error) }, 'no commit from the target; asking it whether it took the guest');
    }
    const deadline = Date.now() + IN_DOUBT_WAIT_MS;
    for (;;) {
      const owner = await this.ask(record);
      if (owner === 'target') return undefined;
      if (owner === 'source') {
        await this.undo(record, guest, 'the target did not take the guest');
        throw new Error('the target did not take the guest over; it runs on here');
      }
      if (Date.now() > deadline) {
        this.schedule();
        throw new Error(`in doubt: the target ${record.target.url} cannot be reached to say whether it took the guest; it stays paused here and this agent keeps asking (docs/migration.md)`);
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  /**
   * The target owns the guest: the record says `committed` (with the guest,
   * so a restart can remove the copy), and the answer is the changes that
   * take the guest out of this registry (with the moved-guest record).
   */
  async handOver(record: SourceRecord, guest: Guest | undefined): Promise<KeyChange[]> {
    await this.deps.records.update<SourceRecord>(record.id, { phase: 'committed', ...(guest ? { guest } : {}) });
    const move = { migrationId: record.id, guestId: record.guestId, target: record.target.url, live: record.live, ...(record.target.hostId ? { hostId: record.target.hostId } : {}) };
    return [this.deps.registry.change(record.guestId, () => undefined), ...(this.deps.hooks.movedChanges?.(move) ?? [])];
  }

  /** After the hand-over: the source's copy removed (QEMU, files, taps), the target told, the record ended. */
  async removeCopy(id: string): Promise<void> {
    const record = this.deps.records.get(id);
    if (record?.role !== 'source' || record.phase !== 'committed') return;
    if (record.guest) {
      const guest = record.guest;
      const migrator = await this.deps.backends.of(guest);
      await backendCall('removing the moved guest', () => migrator.removeOutgoing(guest));
    }
    // The target keeps its record until told: best effort, a leftover is a few bytes there.
    void callPeer(record.target, { method: 'DELETE', path: `/migrations/${record.id}`, timeoutMs: 15_000 }).catch(() => undefined);
    await this.deps.records.remove(record.id);
  }

  /** At start (and then every few seconds while any is in doubt): each source record resolved. */
  async recover(): Promise<void> {
    if (this.resolving) return;
    this.resolving = true;
    let pending = false;
    try {
      for (const record of this.deps.records.all()) {
        if (record.role !== 'source') continue;
        // A record whose job still runs is that job's to resolve.
        if (this.deps.engine.isRunning(record.id)) continue;
        try {
          pending = !(await this.resolve(record)) || pending;
        } catch (error) {
          pending = true;
          this.deps.log.error({ migration: record.id, guest: record.guestId, err: messageOf(error) }, 'could not resolve an interrupted move; retrying');
        }
      }
    } finally {
      this.resolving = false;
    }
    if (pending) this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** True once the record is resolved. */
  private async resolve(record: SourceRecord): Promise<boolean> {
    const guest = this.deps.registry.find(record.guestId);
    if (record.phase === 'committed') {
      // Cut off between the hand-over and the guest's removal from the registry: that lands now.
      if (guest) await this.deps.store.change(...(await this.handOver(record, guest)));
      await this.removeCopy(record.id);
      return true;
    }
    if (record.phase !== 'switching') {
      await this.undo(record, guest, 'the agent stopped during the move');
      return true;
    }
    const owner = await this.ask(record);
    if (owner === 'unknown') return false;
    if (owner === 'source') await this.undo(record, guest, 'the target did not take the guest');
    else {
      await this.deps.store.change(...(await this.handOver(record, guest)));
      await this.removeCopy(record.id);
    }
    this.deps.log.info({ migration: record.id, guest: record.guestId, owner }, 'interrupted move resolved');
    return true;
  }

  /** The target's final word: `abort` drops an uncommitted copy and says which it was. */
  private async ask(record: SourceRecord): Promise<Owner> {
    try {
      const answer = await callPeer<{ phase: string }>(record.target, { method: 'POST', path: `/migrations/${record.id}/abort`, timeoutMs: 15_000 });
      // Only the two answers the protocol has decide; anything else says nothing.
      return answer?.phase === 'committed' ? 'target' : answer?.phase === 'aborted' ? 'source' : 'unknown';
    } catch (error) {
      // 404: the target has no such move, so it never committed it (it keeps committed records until told).
      if (error instanceof PeerRefused && error.status === 404) return 'source';
      if (error instanceof PeerUnreachable || error instanceof PeerRefused) return 'unknown';
      throw error;
    }
  }

  /** Resolve the records left in the background, every few seconds until none is. */
  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.recover();
    }, RETRY_MS);
    this.timer.unref();
  }
}
