/**
 * Manifest of the libvirt backend. Importing this module only declares the
 * plugin; nothing connects until the kernel constructs and starts it.
 */
import { definePlugin, hypervisorBackendStages, PLUGIN_API_VERSION } from '../../core/contract/index.js';
import { libvirtOptionsSchema } from './options.js';
import { LibvirtPlugin } from './plugin.js';

export default definePlugin({
  id: 'libvirt',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'Virtual machines as libvirt domains (qemu:///system, or test:///default to try it out)',
  options: libvirtOptionsSchema,
  create: LibvirtPlugin,
  stages: (libvirt) => hypervisorBackendStages(libvirt.handlers),
});
