/**
 * The libvirt plugin's options (config `plugins[].options`). Parsing applies
 * the defaults, so a bare `{ "module": "libvirt" }` drives the host's own
 * libvirtd on qemu:///system. Relative paths resolve against the agent's
 * working directory.
 */
import path from 'node:path';
import { z } from 'zod';

/** Environment variable that overrides `uri` (e.g. test:///default to try the plugin out). */
export const URI_ENV = 'HYPERKERN_LIBVIRT_URI';
/** Environment variable that overrides `domainType` (CI hosts whose KVM cannot run guests). */
export const DOMAIN_TYPE_ENV = 'HYPERKERN_LIBVIRT_DOMAIN_TYPE';

export const DOMAIN_TYPES = ['auto', 'kvm', 'qemu', 'test'] as const;
export type DomainType = (typeof DOMAIN_TYPES)[number];

export const libvirtOptionsSchema = z
  .object({
    /** libvirt connection URI: qemu:///system on a host, test:///default to try the API out. */
    uri: z.string().min(1).default('qemu:///system'),
    /** The virsh binary (a name on PATH or a path). */
    virsh: z.string().min(1).default('virsh'),
    /**
     * Domain type: kvm, qemu (TCG emulation), test (the test driver), or auto
     * (test for test:// URIs, else kvm when libvirt offers it, else qemu).
     */
    domainType: z.enum(DOMAIN_TYPES).default('auto'),
    /**
     * Domains hyperkern defines are named PREFIX + guest id. Anything else in
     * libvirt is left alone unless adopted (see docs/libvirt.md).
     */
    domainPrefix: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, '1-32 letters, digits, _ . or -').default('hk-'),
    /**
     * Storage pool where guest disks are created as qcow2 volumes (and base
     * images are found). Empty: "default", or the test driver's "default-pool".
     */
    storagePool: z.string().default(''),
    /** Folder of direct-boot kernels and initrds that guests name by file name (metadata libvirt.kernel). */
    imagesDir: z.string().min(1).default('./images'),
    /**
     * Folder where the images plugin leaves fetched images (its imagesDir)
     * for the importImage stage to upload into the pool; empty: fetchImage
     * is not wired to this plugin (see docs/images.md).
     */
    fetchDir: z.string().default(''),
    /** Largest image an upload may bring into the pool. */
    maxImageSizeMiB: z.number().int().positive().default(64 * 1024),
    /** qemu-img, which checks uploaded images before they become volumes. */
    qemuImg: z.string().min(1).default('qemu-img'),
    /** QEMU machine type (e.g. q35); empty lets libvirt choose. */
    machine: z.string().default(''),
    /** Give each guest a VNC display (port chosen by libvirt at start, reported as the guest's vnc). */
    vnc: z.boolean().default(false),
    /** Address VNC listens on; loopback unless you put a proxy in front. */
    vncListen: z.string().min(1).default('127.0.0.1'),
    /** Seconds shutdown waits for the guest to power off after the ACPI button. */
    shutdownTimeoutSeconds: z.number().positive().default(30),
    /** Seconds reboot waits for libvirt to report the guest's reboot. */
    rebootTimeoutSeconds: z.number().positive().default(30),
    /**
     * 0 (default): every metrics request reads libvirt afresh, for its own
     * domain; requests that arrive together are read in one call. Above 0: a
     * read covers all of this plugin's running domains and is reused for this
     * many milliseconds (for monitors that sweep every guest often).
     */
    statsMaxAgeMs: z.number().int().nonnegative().max(60_000).default(0),
    /**
     * Where cpu metrics come from. auto (default): from /proc, through the
     * QEMU pid and vCPU threads in libvirt's status files under qemuStateDir,
     * when `uri` is this host's system daemon (qemu:///system) and that
     * folder is readable (the agent runs as root); from `virsh domstats`
     * otherwise, and for any domain whose files cannot be read. domstats:
     * always from libvirt.
     */
    cpuMetrics: z.enum(['auto', 'domstats']).default('auto'),
    /** libvirtd's QEMU state folder (its localstatedir + /run/libvirt/qemu), where the status files are. */
    qemuStateDir: z.string().min(1).default('/run/libvirt/qemu'),
    /** Seconds one virsh command may take before the shell is restarted. */
    commandTimeoutSeconds: z.number().positive().max(3600).default(120),
  })
  .strict();

export type LibvirtOptions = z.infer<typeof libvirtOptionsSchema>;

/** Options after applying the environment and resolving paths. */
export interface ResolvedLibvirtOptions extends LibvirtOptions {
  /** Where `uri` came from, for the log. */
  uriSource: 'config' | typeof URI_ENV;
}

export function resolveOptions(options: LibvirtOptions, env: NodeJS.ProcessEnv = process.env): ResolvedLibvirtOptions {
  const resolved: ResolvedLibvirtOptions = {
    ...options,
    uriSource: 'config',
    imagesDir: path.resolve(options.imagesDir),
    fetchDir: options.fetchDir ? path.resolve(options.fetchDir) : '',
  };
  if (env[URI_ENV]) {
    resolved.uri = env[URI_ENV]!;
    resolved.uriSource = URI_ENV;
  }
  resolved.storagePool ||= isTestDriver(resolved.uri) ? 'default-pool' : 'default';
  const type = env[DOMAIN_TYPE_ENV];
  if (type) {
    if (!(DOMAIN_TYPES as readonly string[]).includes(type)) throw new Error(`${DOMAIN_TYPE_ENV}="${type}" is not one of ${DOMAIN_TYPES.join(', ')}`);
    resolved.domainType = type as DomainType;
  }
  return resolved;
}

/** The test driver keeps its state per connection: every process sees its own world. */
export function isTestDriver(uri: string): boolean {
  return uri.startsWith('test:');
}
