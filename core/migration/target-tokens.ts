/**
 * The target's bearer token while a move waits in its guest's queue: held
 * in this process's memory only, never in the job's args (which the state
 * store keeps on disk with the job, for as long as the job is listed). The
 * job's args carry a random reference to it instead. A job that outlived
 * its process (requeued after a restart) finds no token: a `{host}` move
 * looks the host up again (the token from the fleet's options), a `{url}`
 * move with a token fails saying to ask again. The source's durable record
 * of a move under way keeps the token (migration-records.ts): a restart
 * needs it to ask the target who owns the guest.
 */
import { randomUUID } from 'node:crypto';
import type { PeerAddress } from './migration-records.js';
import type { HostLookup } from './target-resolver.js';

/** The job args' name of the reference. */
const REF = 'targetTokenRef';

export class TargetTokens {
  private readonly tokens = new Map<string, string>();

  /** The job args that name the target: its address without the token, and the reference to it. */
  keep(target: PeerAddress): { target: PeerAddress; [REF]?: string } {
    const { token, ...address } = target;
    if (!token) return { target: address };
    const ref = randomUUID();
    this.tokens.set(ref, token);
    return { target: address, [REF]: ref };
  }

  /** Forgets the token of args that will never run (the submit failed). */
  drop(args: Record<string, unknown>): void {
    if (typeof args[REF] === 'string') this.tokens.delete(args[REF]);
  }

  /** The target of a job about to run, with its token (taken: a job runs once). */
  async take(args: Record<string, unknown>, lookup?: HostLookup): Promise<PeerAddress> {
    const address = args.target as PeerAddress;
    const ref = args[REF];
    if (typeof ref !== 'string') return address;
    const token = this.tokens.get(ref);
    this.tokens.delete(ref);
    if (token) return { ...address, token };
    if (address.hostId && lookup) {
      const found = await lookup(address.hostId);
      if (found) return { url: found.url, hostId: found.hostId, ...(found.token ? { token: found.token } : {}) };
    }
    throw new Error(
      `the target's token was held in memory only (never written to disk) and this agent restarted before the move began; nothing was copied: ask for the move again`,
    );
  }
}
