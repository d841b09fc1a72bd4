/**
 * Manifest of the images plugin: fetch, upload, list, get and delete of
 * guest disk images in a folder (docs/images.md), and of container images unpacked once into
 * read-only bases (docs/containers.md). Importing this module only
 * declares the plugin.
 */
import { actionStage, defineStage, definePlugin, imageStage, PLUGIN_API_VERSION } from '../../core/contract/index.js';
import { imagesOptionsSchema } from './options.js';
import { ImagesPlugin } from './plugin.js';

export default definePlugin({
  id: 'images',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'Guest disk images (raw, qcow2) in a folder: fetched over http(s)/file or uploaded, checked with qemu-img; OCI container images fetched with skopeo, unpacked with umoci',
  options: imagesOptionsSchema,
  create: ImagesPlugin,
  serves: {
    checkFetch: { action: 'fetchImage', check: true },
    fetch: { action: 'fetchImage', timeoutSeconds: 6 * 3600 },
    list: 'listImages',
    get: 'getImage',
    checkDelete: { action: 'deleteImage', check: true },
    delete: 'deleteImage',
    upload: { action: 'uploadImage', timeoutSeconds: 6 * 3600 },
    // With any backend but one that keeps images elsewhere (libvirt's pool replaces this check).
    requireImages: { action: 'create', check: true },
    // Container images (container-handlers.ts): the actions a "container" image request runs.
    containerCheckFetch: { action: 'containerFetchImage', check: true },
    containerFetch: { action: 'containerFetchImage', timeoutSeconds: 6 * 3600 },
    containerList: 'containerListImages',
    containerGet: 'containerGetImage',
    containerCheckDelete: { action: 'containerDeleteImage', check: true },
    containerDelete: 'containerDeleteImage',
  },
  stages: ({ handlers }) => ({
    checkFetch: imageStage(handlers.checkFetch),
    fetch: imageStage(handlers.fetch),
    list: imageStage(handlers.list),
    get: imageStage(handlers.get),
    checkDelete: imageStage(handlers.checkDelete),
    delete: imageStage(handlers.delete),
    upload: defineStage('imageUpload', handlers.upload),
    requireImages: actionStage(handlers.requireImages),
    containerCheckFetch: imageStage(handlers.containerCheckFetch),
    containerFetch: imageStage(handlers.containerFetch),
    containerList: imageStage(handlers.containerList),
    containerGet: imageStage(handlers.containerGet),
    containerCheckDelete: imageStage(handlers.containerCheckDelete),
    containerDelete: imageStage(handlers.containerDelete),
  }),
});
