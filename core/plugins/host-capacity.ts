/**
 * The host's capacity totals, for GET /host: those the plugin that
 * publishes the host's capacity says (the fleet link, whose `capacity`
 * option overrides the machine's: docs/fleet.md), else the machine's
 * (os.cpus(), os.totalmem()). The fleet's host record
 * (plugins/fleet/inventory.ts) fills in the machine's the same way, so the
 * host's own view and the fleet's agree. Read at each request: cheap.
 */
import os from 'node:os';
import type { LoadedPlugin } from './plugin-loader.js';

export interface HostTotals {
  cpus: number;
  memoryMiB: number;
}

export type HostTotalsSource = () => HostTotals;

export function hostTotalsOf(plugins: readonly LoadedPlugin[]): HostTotalsSource {
  const plugin = plugins.find((p) => typeof p.instance.hostCapacity === 'function');
  return () => {
    const published = plugin?.instance.hostCapacity!() ?? {};
    return {
      cpus: published.cpus ?? os.cpus().length,
      memoryMiB: published.memoryMiB ?? Math.floor(os.totalmem() / 1024 / 1024),
    };
  };
}
