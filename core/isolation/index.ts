/**
 * Plugs process isolation into the loader: `"isolate": true` entries and
 * `command` entries (external sub-agents) run in child processes. The
 * kernel imports this module once; the loader itself knows no processes.
 */
import { registerExternalManifestReader, registerIsolatedPluginFactory } from '../plugins/plugin-loader.js';
import { readExternalManifest } from './external-manifest.js';
import { IsolatedPlugin } from './isolated-plugin.js';

registerIsolatedPluginFactory((slot, services) => IsolatedPlugin.create(slot, services));
registerExternalManifestReader(readExternalManifest);
