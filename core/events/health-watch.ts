/**
 * Plugin health is asked for, not pushed: this polls every plugin's health
 * and records a `plugin.health` event whenever one changes, so followers of
 * the feed learn that a backend went unhealthy without polling /health.
 */
import type { PluginHealth } from '../contract/plugin-api.js';
import type { AgentLogger } from '../logger.js';
import type { StateStore } from '../state/state-store.js';
import { draft } from './kernel-event.js';

export class HealthWatch {
  private timer?: NodeJS.Timeout;
  private last = new Map<string, PluginHealth>();
  private polling = false;

  constructor(
    private readonly poll: () => Promise<Record<string, PluginHealth>>,
    private readonly store: StateStore,
    private readonly log: AgentLogger,
  ) {}

  /** Takes the current health as the baseline, then checks every `intervalMs`. */
  async start(intervalMs: number): Promise<void> {
    this.last = new Map(Object.entries(await this.poll()));
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One poll; records an event per plugin whose health changed. */
  async check(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const now = await this.poll();
      for (const [plugin, health] of Object.entries(now)) {
        const before = this.last.get(plugin);
        if (before && before.healthy === health.healthy && before.message === health.message) continue;
        this.last.set(plugin, health);
        await this.store.record(draft('plugin.health', { plugin, healthy: health.healthy, message: health.message }));
      }
    } catch (error) {
      this.log.warn({ error: (error as Error).message }, 'could not record a plugin health change');
    } finally {
      this.polling = false;
    }
  }
}
