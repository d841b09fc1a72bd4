/**
 * The host's health (GET /health: status, plugins) and capacity (GET
 * /host), refreshed every few seconds and whenever a plugin's health
 * changes. The guest counts on the page come from the live guest list;
 * these give the totals and the plugins.
 */
import type { ApiClient } from '../api/client.js';
import type { AgentEvent, Health, HostCapacity } from '../api/types.js';
import { Observable } from './observable.js';

const POLL_MS = 10_000;

export class HostStore extends Observable {
  health: Health | undefined;
  capacity: HostCapacity | undefined;
  error: string | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly api: ApiClient) {
    super();
  }

  start(): void {
    void this.refresh();
    this.timer ??= setInterval(() => void this.refresh(), POLL_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  apply(event: AgentEvent): void {
    if (event.type === 'plugin.health') void this.refresh();
  }

  /** True when the fleet plugin is configured (its page is then offered). */
  get hasFleet(): boolean {
    return Object.keys(this.health?.plugins ?? {}).some((id) => id === 'fleet' || id.startsWith('fleet'));
  }

  async refresh(): Promise<void> {
    try {
      const [health, capacity] = await Promise.all([this.api.health(), this.api.capacity()]);
      this.health = health;
      this.capacity = capacity;
      this.error = undefined;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.changed();
  }
}
