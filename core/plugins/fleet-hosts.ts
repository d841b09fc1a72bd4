/**
 * The live hosts of a fleet, for GET /fleet/hosts: asked of the plugin that
 * knows the fleet (the one whose instance offers `listFleetHosts`, the
 * fleet link on etcd); the kernel names none. Without such a plugin there
 * is no list (the route answers 501); a plugin that cannot read its store
 * now (etcd unreachable) is a 502 naming it.
 */
import type { FleetHostRecord } from '../contract/plugin-api.js';
import { Errors, messageOf } from '../errors.js';
import type { LoadedPlugin } from './plugin-loader.js';

export type FleetHostList = () => Promise<FleetHostRecord[]>;

/** The list of the first plugin that offers one, or undefined (no fleet configured). */
export function fleetHostsOf(plugins: readonly LoadedPlugin[]): FleetHostList | undefined {
  const plugin = plugins.find((p) => typeof p.instance.listFleetHosts === 'function');
  if (!plugin) return undefined;
  return async () => {
    try {
      return await plugin.instance.listFleetHosts!();
    } catch (error) {
      throw Errors.stageFailed(`plugin "${plugin.id}" could not list the fleet's hosts: ${messageOf(error)}`, { cause: error });
    }
  };
}
