/**
 * mistify's image actions on the libvirt storage pool (docs/images.md,
 * "Images on libvirt"): list, get, upload, delete, the import of what the
 * images plugin fetched, and the create check that the images a new guest
 * names are volumes of the pool.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  imagesOfDisks,
  StageRejection,
  type GuestDirectory,
  type GuestRequest,
  type ImageRequest,
  type ImageResponse,
  type ImageUploadRequest,
  type StageContext,
} from '../../core/contract/index.js';
import type { PoolImages } from './pool-images.js';
import { checkImageName, volumeInfo, volumesOf } from './storage.js';
import type { VirshShell } from './virsh-shell.js';

export interface ImageStageOptions {
  pool: string;
  domainPrefix: string;
  /** The images plugin's folder of fetched images; "" = fetch not wired here. */
  fetchDir: string;
}

export function imageHandlers(images: PoolImages, virsh: VirshShell, guests: GuestDirectory, options: ImageStageOptions) {
  return {
    list: async (request: ImageRequest): Promise<ImageResponse> => ({ images: await images.list(request.type || undefined) }),

    get: async (request: ImageRequest): Promise<ImageResponse> => {
      const image = await images.get(request.id);
      return { images: image ? [image] : [] };
    },

    /** fetchImage, sync (beside images.checkFetch): the id can be a pool volume, no transfer of it runs. */
    checkFetch: (request: ImageRequest): ImageResponse => {
      images.checkId(request.id);
      images.checkType(request.type);
      images.claim(request.id)(); // a 409 now if one runs
      return { images: [] };
    },

    /**
     * fetchImage, async (after images.fetch): uploads the fetched file into
     * the pool and removes it. An image the pool already has is kept (guests
     * may be built on it) and the fetched copy dropped.
     */
    importFetched: async (request: ImageRequest, ctx: StageContext): Promise<ImageResponse> => {
      if (!options.fetchDir) {
        throw new Error('libvirt.importImage needs the libvirt plugin\'s "fetchDir" option: the images plugin\'s imagesDir, where fetched images arrive');
      }
      images.checkId(request.id);
      const file = path.join(options.fetchDir, request.id);
      const release = images.claim(request.id);
      try {
        const existing = await images.stored(request.id);
        if (existing) {
          ctx.log.info({ image: request.id }, 'image already in the pool; keeping it, dropping the fetched copy');
          return { images: [existing] };
        }
        const image = await images.importFile(request.id, file, ctx.signal);
        ctx.log.info({ image: image.id, sizeMiB: image.size, pool: options.pool }, 'fetched image uploaded into the pool');
        return { images: [image] };
      } finally {
        release();
        await rm(file, { force: true });
      }
    },

    /** deleteImage, sync: it exists and no guest's disk is built on it. */
    checkDelete: async (request: ImageRequest): Promise<ImageResponse> => {
      const image = await images.require(request.id);
      await images.refuseInUse(request.id);
      return { images: [image] };
    },

    delete: async (request: ImageRequest): Promise<ImageResponse> => {
      await images.refuseInUse(request.id);
      await images.remove(request.id);
      return { images: [] };
    },

    upload: async (request: ImageUploadRequest, ctx: StageContext): Promise<ImageResponse> => {
      images.checkId(request.id);
      images.checkType(request.type);
      const release = images.claim(request.id);
      try {
        if (await images.stored(request.id)) await images.refuseInUse(request.id);
        const image = await images.upload(request.id, request.body, request.size, request.sha256, ctx.signal);
        ctx.log.info({ image: image.id, sizeMiB: image.size, pool: options.pool }, 'image uploaded into the pool');
        return { images: [image] };
      } finally {
        release();
      }
    },

    /** create, sync: every image the new guest names is a volume of the pool (400 at once, not a failed job). */
    requireImages: async ({ guest }: GuestRequest): Promise<void> => {
      const named = imagesOfDisks(guest);
      if (named.size === 0) return;
      const others = volumesOf((await guests.list()).filter((g) => g.id !== guest.id));
      for (const name of named) {
        // Before virsh sees it: no path, no leading "-", not another guest's disk.
        checkImageName(name, others, options.domainPrefix);
        if (!(await volumeInfo(virsh, options.pool, name))) {
          throw new StageRejection(400, `image "${name}" is not in libvirt storage pool "${options.pool}"; upload it with PUT /images/${name} or fetch it with POST /images`);
        }
      }
    },
  };
}

export type ImageHandlers = ReturnType<typeof imageHandlers>;
