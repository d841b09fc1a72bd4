/**
 * Fleet hosts by id, for a move named `{"host": "<hostId>"}`
 * (docs/migration.md): asked of the plugin that knows the fleet (the one
 * whose instance offers `locateHost`, the fleet link on etcd); the kernel
 * names none. A plugin that cannot tell now (etcd unreachable) is a 502
 * naming it; a host it does not know is `undefined` for the caller to refuse.
 */
import type { PeerAgent } from '../contract/plugin-api.js';
import { Errors, messageOf } from '../errors.js';
import type { LoadedPlugin } from './plugin-loader.js';

export type HostLookup = (hostId: string) => Promise<PeerAgent | undefined>;

/** The lookup of the first plugin that offers one, or undefined (no fleet configured). */
export function hostLookupOf(plugins: readonly LoadedPlugin[]): HostLookup | undefined {
  const plugin = plugins.find((p) => typeof p.instance.locateHost === 'function');
  if (!plugin) return undefined;
  return async (hostId) => {
    try {
      return await plugin.instance.locateHost!(hostId);
    } catch (error) {
      throw Errors.stageFailed(`plugin "${plugin.id}" could not look up host "${hostId}": ${messageOf(error)}; give the target's "url" (and "token") instead, or retry`, { cause: error });
    }
  };
}
