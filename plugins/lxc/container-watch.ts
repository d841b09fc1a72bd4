/**
 * What containers do on their own, turned into guest states: LXC's state
 * events (one lxc-monitor for all containers), containers found at agent
 * start (running on under LXC's monitors, or stopped while the agent was
 * away), and which guests have an action of this plugin in progress (their
 * events are that action's).
 *
 * An event only says "look again": the container as it is now is compared
 * with the guest as the registry has it, once no action of this plugin
 * runs on it, nor ran within LATE_EVENT_MS (LXC's monitor daemon relays
 * events, so they can come after the action that caused them ended).
 */
import { stat } from 'node:fs/promises';
import { ObserveQueue, type Guest, type GuestDirectory, type GuestState, type Logger } from '../../core/contract/index.js';
import { guestIdOf, type ContainerPaths } from './container-paths.js';
import { exitReason, runState } from './container-state.js';
import type { LxcStateName } from './lxc-monitor.js';

/** How long after an action its LXC state events are still taken as its own. */
const LATE_EVENT_MS = 1000;

export class ContainerWatch {
  private readonly observations: ObserveQueue;
  /** Guests with actions of this plugin in progress (a count: restart runs kill then start). */
  private readonly busy = new Map<string, number>();
  /** Guests LXC reported a change of while busy: looked at again once not. */
  private readonly recheck = new Set<string>();

  constructor(
    private readonly guests: GuestDirectory,
    private readonly log: Logger,
    private readonly pathsOf: (guestId: string) => ContainerPaths,
    private readonly isContainer: (guest: Guest) => boolean,
  ) {
    this.observations = new ObserveQueue(guests, log, 'LXC');
  }

  /** Runs `work` with the guest marked busy (and for LATE_EVENT_MS after). */
  async busyWith<T>(id: string, work: () => Promise<T>): Promise<T> {
    this.busy.set(id, (this.busy.get(id) ?? 0) + 1);
    try {
      return await work();
    } finally {
      setTimeout(() => {
        const left = (this.busy.get(id) ?? 1) - 1;
        if (left > 0) return void this.busy.set(id, left);
        this.busy.delete(id);
        if (this.recheck.delete(id)) this.reconcile(id);
      }, LATE_EVENT_MS).unref();
    }
  }

  /** An lxc-monitor line's news. */
  onLxcState = (name: string, state: LxcStateName): void => {
    const id = guestIdOf(name);
    if (id === undefined || (state !== 'STOPPED' && state !== 'RUNNING')) return;
    if (this.busy.has(id)) this.recheck.add(id);
    else this.reconcile(id);
  };

  /** At agent start: a container's state as LXC has it, recorded when it differs from the registry's. */
  async reattach(guest: Guest): Promise<void> {
    const paths = this.pathsOf(guest.id);
    if (!(await isDirectory(paths.dir))) return;
    const now = await runState(paths);
    if (now !== 'stopped') {
      const state: GuestState = now === 'running' ? 'running' : 'suspended';
      this.log.info({ guest: guest.id, state }, 'container found running at agent start');
      if (guest.state !== state) this.observations.observe(guest.id, { state }, `container found ${state} at agent start`);
    } else if (guest.state === 'running' || guest.state === 'suspended') {
      const { state, reason } = await exitReason(paths);
      this.observations.observe(guest.id, { state }, `${reason} while the agent was not running`);
    }
  }

  /** Resolves once every observation made so far is recorded. */
  drained(): Promise<void> {
    return this.observations.drained();
  }

  private reconcile(id: string): void {
    this.observations.enqueue(async () => {
      if (this.busy.has(id)) return void this.recheck.add(id);
      const guest = await this.guests.get(id);
      if (!guest || !this.isContainer(guest)) return;
      const paths = this.pathsOf(guest.id);
      const now = await runState(paths);
      const registryRuns = guest.state === 'running' || guest.state === 'suspended';
      if (now === 'stopped' && registryRuns) {
        const { state: end, reason } = await exitReason(paths);
        this.log.info({ guest: id, state: end, reason }, 'container stopped on its own');
        await this.guests.observe(id, { state: end }, reason);
      } else if (now !== 'stopped' && !registryRuns && guest.state !== 'creating' && guest.state !== 'deleting' && (await isDirectory(paths.dir))) {
        await this.guests.observe(id, { state: now === 'running' ? 'running' : 'suspended' }, 'LXC reports the container running (started outside the agent, or restarted itself)');
      }
    }, { guest: id });
  }
}

export async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then((s) => s.isDirectory(), () => false);
}
