/**
 * The kernel's side of the contract's AgentInfo: what a plugin may know
 * about the running agent (version, URL once listening, health, guest
 * changes from the change feed). Plugins that publish the host elsewhere
 * (fleet) use it.
 */
import type { AgentInfo } from './contract/plugin-api.js';
import type { ChangeFeed } from './events/change-feed.js';
import { pluginHealth, type LoadedPlugin } from './plugins/plugin-loader.js';

export class KernelAgentInfo implements AgentInfo {
  readonly startedAt = Date.now();
  private listenUrl: string | undefined;
  private plugins: readonly LoadedPlugin[] = [];

  constructor(
    readonly version: string,
    private readonly feed: Pick<ChangeFeed, 'subscribe'>,
  ) {}

  /** The kernel calls these once plugins are loaded and once the API listens. */
  pluginsLoaded(plugins: readonly LoadedPlugin[]): void {
    this.plugins = plugins;
  }

  listening(url: string): void {
    this.listenUrl = url;
  }

  url(): string | undefined {
    return this.listenUrl;
  }

  async status(): Promise<'ok' | 'degraded'> {
    const health = await pluginHealth([...this.plugins]);
    return Object.values(health).every((p) => p.healthy) ? 'ok' : 'degraded';
  }

  /** Guest events of the change feed, reduced to the guest's id (they follow the commit). */
  onGuestChange(listener: (guestId: string) => void): () => void {
    return this.feed.subscribe((event) => {
      if (event.guest !== undefined && event.type.startsWith('guest.')) listener(event.guest);
    });
  }
}
