/**
 * The images plugin: mistify's image actions on a folder of raw and qcow2
 * files (the QEMU backend's images folder), and the create check that the
 * images a new guest names exist.
 */
import path from 'node:path';
import { inject, injectable } from 'tsyringe';
import {
  diskImage,
  imagesOfDisks,
  StageRejection,
  Tokens,
  type GuestDirectory,
  type GuestRequest,
  type ImageRequest,
  type ImageResponse,
  type ImageUploadRequest,
  type Logger,
  type PluginHealth,
  type PluginInstance,
  type StageContext,
} from '../../core/contract/index.js';
import { ImageStore, TransferFailed, type ImageEntry } from './image-store.js';
import type { ImagesOptions } from './options.js';
import { sha256OfFile } from './sha256-file.js';
import { containerImageHandlers } from './container-handlers.js';
import { ContainerImageStore } from './container-store.js';

const MIB = 1024 * 1024;

@injectable()
export class ImagesPlugin implements PluginInstance {
  private readonly store: ImageStore;
  private readonly containers: ContainerImageStore;
  private readonly containerHandlers: ReturnType<typeof containerImageHandlers>;
  /** The folder of the unpacked container images: containerImagesDir, else container-images in the data dir. */
  private readonly containerDir: string;
  /** The folder of the images: the imagesDir option, else this plugin's data dir. */
  private readonly dir: string;

  constructor(
    @inject(Tokens.Options) private readonly options: ImagesOptions,
    @inject(Tokens.Guests) private readonly guests: GuestDirectory,
    @inject(Tokens.Logger) private readonly log: Logger,
    @inject(Tokens.DataDir) dataDir: string,
  ) {
    this.dir = path.resolve(options.imagesDir ?? dataDir);
    const policy = {
      allowedSchemes: options.allowedSchemes,
      fileSourceDirs: options.fileSourceDirs.map((d) => path.resolve(d)),
      stallTimeoutMs: options.stallTimeoutSeconds * 1000,
    };
    this.containerDir = path.resolve(options.containerImagesDir ?? path.join(dataDir, 'container-images'));
    this.containers = new ContainerImageStore({
      dir: this.containerDir,
      type: options.containerType,
      skopeo: options.skopeo,
      umoci: options.umoci,
      maxBytes: options.maxImageSizeMiB * MIB,
      policy,
      idShift: options.containerIdShift,
    });
    this.containerHandlers = containerImageHandlers(this.containers, { ...policy, insecureRegistries: options.insecureRegistries }, guests);
    this.store = new ImageStore({
      dir: this.dir,
      qemuImg: options.qemuImg,
      type: options.type,
      maxBytes: options.maxImageSizeMiB * MIB,
      imageServer: options.imageServer,
      policy,
    });
  }

  async start(): Promise<void> {
    const { removed } = await this.store.open();
    this.log.info({ imagesDir: this.dir, removedPartialFiles: removed }, 'image store ready');
    const containers = await this.containers.open();
    this.log.info({ containerImagesDir: this.containerDir, removedPartialFolders: containers.removed }, 'container image store ready');
  }

  health(): PluginHealth {
    return { healthy: true, message: `image store with ${this.options.allowedSchemes.join(', ')} sources` };
  }

  /** The handlers, one per stage the manifest lists (plugins/images/index.ts). */
  readonly handlers = {
    // The container image stages (container-handlers.ts), built in the constructor from the options.
    containerCheckFetch: (request: ImageRequest) => this.containerHandlers.containerCheckFetch(request),
    containerFetch: (request: ImageRequest, ctx: StageContext) => this.containerHandlers.containerFetch(request, ctx),
    containerList: () => this.containerHandlers.containerList(),
    containerGet: (request: ImageRequest) => this.containerHandlers.containerGet(request),
    containerCheckDelete: (request: ImageRequest) => this.containerHandlers.containerCheckDelete(request),
    containerDelete: (request: ImageRequest) => this.containerHandlers.containerDelete(request),
    /** fetchImage, sync: the request is sound (id, type, source, sha256; a file: source is a file it may read). */
    checkFetch: async (request: ImageRequest): Promise<ImageResponse> => {
      await this.store.checkFetch(request);
      return { images: [] };
    },
    /** fetchImage, async: the transfer. An image already here is kept, not fetched again. */
    fetch: async (request: ImageRequest, ctx: StageContext): Promise<ImageResponse> => {
      const plan = this.store.planFetch(request);
      const release = this.store.claim(request.id);
      try {
        const existing = await this.store.get(request.id);
        if (existing?.status === 'complete') {
          if (request.sha256 && (await sha256OfFile(this.store.fileOf(request.id), ctx.signal)) !== request.sha256.toLowerCase()) {
            throw new StageRejection(409, `image ${request.id} is already here with a different sha256; DELETE /images/${request.id} first to fetch it again`);
          }
          ctx.log.info({ image: request.id }, 'image already present; not fetched again');
          return { images: [wire(existing)] };
        }
        const entry = await this.store.fetch(plan, { signal: ctx.signal, sha256: request.sha256, onProgress: (p) => ctx.progress?.(p) });
        ctx.log.info({ image: entry.id, format: entry.format, sizeMiB: entry.size, source: plan.url.origin }, 'image fetched');
        return { images: [wire(entry)] };
      } finally {
        release();
      }
    },
    list: async (request: ImageRequest): Promise<ImageResponse> => ({ images: (await this.store.list(request.type || undefined)).map(wire) }),
    get: async (request: ImageRequest): Promise<ImageResponse> => {
      const entry = await this.store.get(request.id);
      return { images: entry ? [wire(entry)] : [] };
    },
    /** deleteImage, sync: it exists and no guest's disk is built on it. */
    checkDelete: async (request: ImageRequest): Promise<ImageResponse> => {
      const entry = await this.requireImage(request.id);
      await this.refuseInUse(request.id);
      return { images: [wire(entry)] };
    },
    delete: async (request: ImageRequest): Promise<ImageResponse> => {
      await this.refuseInUse(request.id);
      await this.store.remove(request.id);
      return { images: [] };
    },
    upload: async (request: ImageUploadRequest, ctx: StageContext): Promise<ImageResponse> => {
      const release = this.store.claim(request.id);
      try {
        if (request.size !== undefined && request.size > this.options.maxImageSizeMiB * MIB) {
          throw new StageRejection(413, `the image is ${request.size} bytes, over the limit of ${this.options.maxImageSizeMiB} MiB (the images plugin's maxImageSizeMiB option)`);
        }
        this.store.checkRequest(request);
        if (await this.store.get(request.id)) await this.refuseInUse(request.id);
        const entry = await this.store.upload(request.id, request.body, request.size, { signal: ctx.signal, sha256: request.sha256 }).catch((error: unknown) => {
          // Refused bytes are the uploader's fault, not the host's: 413 over the size limit (chunked
          // bodies are only found to be over it mid-stream), 422 for format and checksum.
          if (error instanceof TransferFailed && error.refused) throw new StageRejection(error.refused === 'tooLarge' ? 413 : 422, error.message);
          throw error;
        });
        ctx.log.info({ image: entry.id, format: entry.format, sizeMiB: entry.size }, 'image uploaded');
        return { images: [wire(entry)] };
      } finally {
        release();
      }
    },
    /** create, sync: every image the new guest names is here (400 at once, not a failed job). */
    requireImages: async ({ guest }: GuestRequest): Promise<void> => {
      const named = imagesOfDisks(guest);
      if (guest.disks.length === 0 && guest.image) named.add(guest.image);
      for (const name of named) {
        if (!(await this.store.resolve(name))) {
          throw new StageRejection(400, `image "${name}" is not on this host; fetch it first with POST /images {"id": "${name}", "source": "..."}`);
        }
      }
    },
  };

  private async requireImage(id: string): Promise<ImageEntry> {
    const entry = await this.store.get(id);
    if (!entry) throw new StageRejection(404, `no image with id "${id}" on this host`);
    return entry;
  }

  /** 409 naming the first guest whose disk is built on the image. */
  private async refuseInUse(id: string): Promise<void> {
    const file = this.store.fileOf(id);
    for (const guest of await this.guests.list()) {
      for (const [i, disk] of guest.disks.entries()) {
        const name = diskImage(guest, i);
        if (name && (await this.store.resolve(name)) === file) {
          throw new StageRejection(409, `image ${id} is in use by guest ${guest.id} (disk ${disk.device || i}); delete that guest first`);
        }
      }
    }
  }
}

function wire(entry: ImageEntry) {
  return { id: entry.id, type: entry.type, volume: entry.volume, snapshot: entry.snapshot, size: entry.size, status: entry.status };
}
