/**
 * Manifest of the libvirt backend. Importing this module only declares the
 * plugin; nothing connects until the kernel constructs and starts it.
 */
import {
  actionStage,
  defineStage,
  definePlugin,
  hypervisorBackendStages,
  imageStage,
  PLUGIN_API_VERSION,
  QCOW2_SNAPSHOT_ROLES,
  snapshotDownloadStage,
  snapshotStage,
  vncStage,
  consoleStage,
} from '../../core/contract/index.js';
import { libvirtOptionsSchema } from './options.js';
import { LIBVIRT_METADATA } from './metadata.js';
import { LibvirtPlugin } from './plugin.js';

export default definePlugin({
  id: 'libvirt',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'Virtual machines as libvirt domains (qemu:///system, or test:///default to try it out)',
  options: libvirtOptionsSchema,
  create: LibvirtPlugin,
  // Which domain a guest is, and whether its storage is ours: a client that
  // rewrote these could start or delete another guest's domain.
  ownedMetadata: [LIBVIRT_METADATA.domain, LIBVIRT_METADATA.uuid, LIBVIRT_METADATA.adopted],
  // No move between agents (docs/migration.md, docs/libvirt.md): 501 with this reason.
  declines: {
    migration:
      "libvirt moves its domains itself (virsh migrate --live --copy-storage-all, libvirtd to libvirtd), which this agent does not drive: it could not be tested here, where one libvirtd runs; move the guest with libvirt's own tools, or run it on the qemu backend, whose guests move",
  },
  // Images are volumes of the pool: its image stages replace the images plugin's folder, except
  // for fetch, where the images plugin downloads and this plugin imports the file into the pool.
  serves: {
    start: ['start', 'resume'],
    listImages: { action: 'listImages', replaces: ['images'] },
    getImage: { action: 'getImage', replaces: ['images'] },
    checkFetchImage: { action: 'fetchImage', check: true, after: 'images' },
    importImage: { action: 'fetchImage', after: 'images', timeoutSeconds: 6 * 3600 },
    checkDeleteImage: { action: 'deleteImage', check: true, replaces: ['images'] },
    deleteImage: { action: 'deleteImage', replaces: ['images'] },
    uploadImage: { action: 'uploadImage', replaces: ['images'], timeoutSeconds: 6 * 3600 },
    requireImages: { action: 'create', check: true, replaces: ['images'] },
    ...QCOW2_SNAPSHOT_ROLES,
  },
  stages: (libvirt) => ({
    ...hypervisorBackendStages(libvirt.handlers),
    // Images as volumes of the storage pool (docs/images.md, "Images on libvirt").
    listImages: imageStage(libvirt.imageHandlers.list),
    getImage: imageStage(libvirt.imageHandlers.get),
    checkFetchImage: imageStage(libvirt.imageHandlers.checkFetch),
    importImage: imageStage(libvirt.imageHandlers.importFetched),
    checkDeleteImage: imageStage(libvirt.imageHandlers.checkDelete),
    deleteImage: imageStage(libvirt.imageHandlers.delete),
    uploadImage: defineStage('imageUpload', libvirt.imageHandlers.upload),
    requireImages: actionStage(libvirt.imageHandlers.requireImages),
    // Guest-wide: libvirt domain snapshots; one disk: qcow2 snapshots of its volume (docs/snapshots.md, "libvirt").
    checkCreateSnapshot: snapshotStage(libvirt.snapshotHandlers.checkCreate),
    createSnapshot: snapshotStage(libvirt.snapshotHandlers.create),
    checkRollbackSnapshot: snapshotStage(libvirt.snapshotHandlers.checkRollback),
    listSnapshots: snapshotStage(libvirt.snapshotHandlers.list),
    getSnapshot: snapshotStage(libvirt.snapshotHandlers.get),
    deleteSnapshot: snapshotStage(libvirt.snapshotHandlers.delete),
    rollbackSnapshot: snapshotStage(libvirt.snapshotHandlers.rollback),
    downloadSnapshot: snapshotDownloadStage(libvirt.snapshotHandlers.download),
    // GET /guests/{id}/vnc: where the domain's VNC server listens (config actions.vnc).
    vnc: vncStage(({ guest }) => libvirt.domains.vncEndpoint(libvirt.domains.require(guest))),
    // GET /guests/{id}/console: ttyS0 on a socket, its output from the log libvirt keeps (config actions.console).
    console: consoleStage((request) => libvirt.consoles.open(request)),
  }),
});
