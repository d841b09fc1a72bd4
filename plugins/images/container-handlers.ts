/**
 * The images plugin's stages for container images (mistify's
 * containerFetchImage, containerListImages, containerGetImage,
 * containerDeleteImage): OCI images fetched with skopeo and unpacked once
 * into a read-only base (container-store.ts). A request never answers with
 * a host path; a delete while a container guest names the image is a 409.
 */
import { StageRejection, type GuestDirectory, type ImageRequest, type ImageResponse, type StageContext } from '../../core/contract/index.js';
import { checkLocalContainerSource, parseContainerSource, type ContainerSource, type ContainerSourcePolicy } from './container-source.js';
import type { ContainerImageEntry, ContainerImageStore } from './container-store.js';
import { invalidImageId } from './image-id.js';
import { SourceRefused } from './image-source.js';

export function containerImageHandlers(store: ContainerImageStore, policy: ContainerSourcePolicy, guests: GuestDirectory) {
  const busy = new Set<string>();

  /** The request's source, parsed and (if local) checked: 400 with the reason otherwise. */
  const sourceOf = async (request: ImageRequest): Promise<ContainerSource> => {
    const invalid = invalidImageId(request.id);
    if (invalid) throw new StageRejection(400, invalid);
    if (!request.source) throw new StageRejection(400, 'source is required for a container image, e.g. "docker://registry.example/web:1.2"');
    if (request.sha256) throw new StageRejection(400, 'sha256 does not apply to container images; pin a digest in the source instead (docker://registry.example/web@sha256:...)');
    try {
      const source = parseContainerSource(request.source, policy);
      await checkLocalContainerSource(source, policy);
      return source;
    } catch (error) {
      if (error instanceof SourceRefused) throw new StageRejection(400, error.message);
      throw error;
    }
  };

  const refuseInUse = async (id: string): Promise<void> => {
    const user = (await guests.list()).find((g) => g.type === 'container' && g.image === id);
    if (user) throw new StageRejection(409, `container image ${id} is in use by guest ${user.id}; delete that guest first`);
  };

  const requireImage = async (id: string): Promise<ContainerImageEntry> => {
    const invalid = invalidImageId(id);
    if (invalid) throw new StageRejection(400, invalid);
    const entry = await store.get(id);
    if (!entry) throw new StageRejection(404, `no container image with id "${id}" on this host`);
    return entry;
  };

  return {
    /** containerFetchImage, sync: id and source are sound, a local source is one this host serves. */
    containerCheckFetch: async (request: ImageRequest): Promise<ImageResponse> => {
      await sourceOf(request);
      return { images: [] };
    },
    /** containerFetchImage, async: skopeo copy, umoci unpack, read-only mount. An image already here is kept. */
    containerFetch: async (request: ImageRequest, ctx: StageContext): Promise<ImageResponse> => {
      const source = await sourceOf(request);
      if (busy.has(request.id)) throw new StageRejection(409, `container image ${request.id} is being fetched or deleted`);
      busy.add(request.id);
      try {
        const existing = await store.get(request.id);
        if (existing?.status === 'complete') {
          ctx.log.info({ image: request.id }, 'container image already present; not fetched again');
          return { images: [wire(existing)] };
        }
        const entry = await store.fetch(request.id, source, ctx.signal);
        ctx.log.info({ image: entry.id, transport: source.transport, sizeMiB: entry.size }, 'container image fetched and unpacked');
        return { images: [wire(entry)] };
      } finally {
        busy.delete(request.id);
      }
    },
    containerList: async (): Promise<ImageResponse> => ({ images: (await store.list()).map(wire) }),
    containerGet: async (request: ImageRequest): Promise<ImageResponse> => {
      if (invalidImageId(request.id)) return { images: [] };
      const entry = await store.get(request.id);
      return { images: entry ? [wire(entry)] : [] };
    },
    /** containerDeleteImage, sync: it exists and no container guest names it. */
    containerCheckDelete: async (request: ImageRequest): Promise<ImageResponse> => {
      const entry = await requireImage(request.id);
      await refuseInUse(request.id);
      return { images: [wire(entry)] };
    },
    containerDelete: async (request: ImageRequest): Promise<ImageResponse> => {
      await requireImage(request.id);
      await refuseInUse(request.id);
      busy.add(request.id);
      try {
        await store.remove(request.id);
      } finally {
        busy.delete(request.id);
      }
      return { images: [] };
    },
  };
}

/** mistify's Image: no volume (no host path), the unpacked size in MiB. */
function wire(entry: ContainerImageEntry) {
  return { id: entry.id, type: entry.type, volume: '', snapshot: '', size: entry.size, status: entry.status };
}
