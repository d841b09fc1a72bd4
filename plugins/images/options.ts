/**
 * Options of the images plugin (config `plugins[].options`). Relative paths
 * resolve against the agent's working directory; `imagesDir` is the same
 * folder the QEMU plugin's `imagesDir` names, so fetched images back disks.
 * Without it the images live in the plugin's own folder of the agent's data
 * dir (DATA_DIR/plugins/images), as with the simulator, whose guests read none.
 */
import { z } from 'zod';

export const imagesOptionsSchema = z
  .object({
    /** Folder of the images, one file per image named by its id. */
    imagesDir: z.string().min(1).optional(),
    qemuImg: z.string().min(1).default('qemu-img'),
    /** The image type reported and accepted (mistify's VM image type). */
    type: z.string().min(1).default('kvm'),
    /** Largest image accepted, fetched or uploaded. */
    maxImageSizeMiB: z.number().int().positive().default(64 * 1024),
    /** Source URL schemes a fetch may use. */
    allowedSchemes: z.array(z.enum(['http', 'https', 'file'])).default(['http', 'https']),
    /** Folders a file: source must lie in; file: needs at least one. */
    fileSourceDirs: z.array(z.string().min(1)).default([]),
    /** Base URL a fetch with an empty source uses: base + id (mistify's image service). */
    imageServer: z.string().url().or(z.literal('')).default(''),
    /** Seconds a source may send nothing before the fetch fails. */
    stallTimeoutSeconds: z.number().positive().max(3600).default(60),
    /** Folder of the unpacked container images (read-only bases), one folder per image id; unset = container-images in the plugin's data dir. */
    containerImagesDir: z.string().min(1).optional(),
    /** The image type of container images (mistify's; requests with it run the container actions). */
    containerType: z.string().min(1).default('container'),
    /**
     * Host uid/gid the image's root is unpacked as (ids 0-65535 shifted by
     * it, `umoci unpack --uid-map/--gid-map`): the LXC plugin's `idmapBase`,
     * so that root inside an unprivileged container owns its image's files.
     * 0 keeps the image's own owners (privileged containers).
     */
    containerIdShift: z.number().int().min(0).max(2 ** 32 - 2 ** 16).default(0),
    skopeo: z.string().min(1).default('skopeo'),
    umoci: z.string().min(1).default('umoci'),
    /** Registries (host or host:port) not on loopback that may be reached over plain HTTP. */
    insecureRegistries: z.array(z.string().min(1)).default([]),
  })
  .strict();

export type ImagesOptions = z.infer<typeof imagesOptionsSchema>;
