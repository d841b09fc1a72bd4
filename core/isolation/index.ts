/**
 * core/isolation: plugins in child processes (MessagePack-RPC), their
 * restarts, and external sub-agents.
 * May import: contract, config, plugins, errors, logger.
 *
 * Process isolation as the loader uses it: `"isolate": true` entries and
 * `command` entries (external sub-agents) run in child processes. The
 * kernel passes this to the loader explicitly (KernelServices.isolation).
 */
import type { PluginIsolation } from '../plugins/plugin-loader.js';
import { readExternalManifest } from './external-manifest.js';
import { IsolatedPlugin } from './isolated-plugin.js';

export const processIsolation: PluginIsolation = {
  construct: (slot, services) => IsolatedPlugin.create(slot, services),
  readExternalManifest,
};
