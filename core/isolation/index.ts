/**
 * core/isolation: plugins in child processes (MessagePack-RPC), their
 * restarts, and external sub-agents.
 * May import: contract, config, plugins, errors, logger.
 *
 * Process isolation as the loader uses it: `"isolate": true` entries and
 * `command` entries (external sub-agents) run in child processes. The
 * kernel passes this to the loader explicitly (KernelServices.isolation).
 *
 * The isolation code (and MessagePack with it) is imported on first use:
 * most configs isolate nothing, and every module loaded at boot delays the
 * agent's first answer and stays in its memory.
 */
import type { PluginIsolation } from '../plugins/plugin-loader.js';

export const processIsolation: PluginIsolation = {
  construct: async (slot, services) => (await import('./isolated-plugin.js')).IsolatedPlugin.create(slot, services),
  readExternalManifest: async (entry, where, services) => (await import('./external-manifest.js')).readExternalManifest(entry, where, services),
};
