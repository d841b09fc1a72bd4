/**
 * Zod schemas of what the agent answers, for the OpenAPI document and the
 * contract test. The TypeScript wire types stay the source of the field
 * names: the assertions at the bottom fail to compile when a schema and its
 * wire type disagree, so the document cannot drift from the code.
 */
import { z } from 'zod';
import { metadataPatchSchema } from '../../guests/metadata.js';
import type { Disk, Guest, GuestCpuMetrics, GuestDiskMetrics, GuestNicMetrics, Job, Nic } from '../../contract/wire-types.js';

export const NicSchema = z
  .object({
    name: z.string(),
    network: z.string(),
    model: z.string(),
    mac: z.string(),
    address: z.string(),
    netmask: z.string(),
    gateway: z.string(),
    device: z.string().meta({ description: 'host-side tap device, assigned by the agent' }),
    vlans: z.array(z.number().int()).nullable(),
  })
  .meta({ id: 'Nic' });

export const DiskSchema = z
  .object({
    bus: z.enum(['ide', 'scsi', 'sata', 'virtio']),
    device: z.string().meta({ description: 'guest-side device (vda, sdb...), assigned by the agent' }),
    size: z.number().int().meta({ description: 'MiB' }),
    volume: z.string(),
    image: z.string(),
    source: z.string(),
  })
  .meta({ id: 'Disk' });

export const GuestSchema = z
  .object({
    id: z.string(),
    type: z.string().meta({ description: '"" means a virtual machine' }),
    image: z.string(),
    nics: z.array(NicSchema).nullable(),
    disks: z.array(DiskSchema).nullable(),
    state: z.string().meta({ description: 'creating, off, running, suspended, shutdown, deleting, error; backends may add others', example: 'running' }),
    memory: z.number().int().meta({ description: 'MiB' }),
    cpu: z.number().int().meta({ description: 'vCPUs' }),
    vnc: z.number().int().meta({ description: 'VNC port, 0 when none' }),
    metadata: z.record(z.string(), z.string()).nullable(),
  })
  .meta({ id: 'Guest', description: 'A virtual machine (or container) on this host' });

export const JobSchema = z
  .object({
    ID: z.string(),
    GuestID: z.string(),
    Action: z.string(),
    QueuedAt: z.string().meta({ description: 'RFC 3339; Go zero time 0001-01-01T00:00:00Z when unset' }),
    StartedAt: z.string(),
    UpdatedAt: z.string(),
    Status: z.enum(['Queued', 'Running', 'Complete', 'Error']),
    Message: z.string(),
    Stage: z.string().optional().meta({ description: 'Extension (Go decoders ignore it): the stage a running job is in' }),
    QueuePosition: z.number().int().min(1).optional().meta({ description: "Extension: a queued job's place in its guest's queue (1 = next)" }),
    Migration: z
      .object({ phase: z.string(), target: z.string(), bytesSent: z.number(), bytesLeft: z.number(), bytesTotal: z.number() })
      .optional()
      .meta({ description: "Extension: a running move's phase and the bytes of its copy (docs/migration.md)" }),
  })
  .meta({ id: 'Job', description: 'A queued action (mistify field names; Stage and QueuePosition are hyperkern extensions)' });

export const CpuMetricsSchema = z.object({ cpu_time: z.number(), vcpu_time: z.number() }).meta({ id: 'GuestCpuMetrics', description: 'per vCPU; seconds' });

export const NicMetricsSchema = z
  .object({
    name: z.string(),
    rx_bytes: z.number(),
    rx_packets: z.number(),
    rx_errors: z.number(),
    rx_drops: z.number(),
    tx_bytes: z.number(),
    tx_packets: z.number(),
    tx_errors: z.number(),
    tx_drops: z.number(),
  })
  .meta({ id: 'GuestNicMetrics' });

/**
 * A NIC whose backend cannot count its traffic (QEMU user-mode networking, a
 * tap that vanished): the name and why, and deliberately no numbers, since
 * zeros would claim the NIC moved nothing. A Go decoder reads it as a
 * GuestNicMetrics with zero counters and ignores `counters`.
 */
export const UnavailableNicMetricsSchema = z
  .object({ name: z.string(), counters: z.string().meta({ description: 'why this NIC has no counters' }) })
  .meta({ id: 'UnavailableNicMetrics' });

export const DiskMetricsSchema = z
  .object({
    disk: z.string(),
    read_ops: z.number(),
    read_bytes: z.number(),
    read_time: z.number(),
    write_ops: z.number(),
    write_bytes: z.number(),
    write_time: z.number(),
    flush_ops: z.number(),
    flush_time: z.number(),
  })
  .meta({ id: 'GuestDiskMetrics', description: 'times in seconds' });

export const MetadataSchema = z.record(z.string(), z.string()).meta({ id: 'Metadata', description: 'string keys to string values' });

export const MetadataPatchSchema = metadataPatchSchema.meta({
  id: 'MetadataPatch',
  description: 'a string value sets a key; null or "" removes it (a Go map[string]string cannot hold null); at most 1024 keys; a null body changes nothing',
});

export const ErrorSchema = z
  .looseObject({
    message: z.string().meta({ description: 'what is wrong, for a person' }),
    code: z.number().int().meta({ description: 'the HTTP status' }),
    error: z.string().meta({ description: 'stable HK_ERR_* name', example: 'HK_ERR_GUEST_NOT_FOUND' }),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional().meta({ description: 'the invalid fields of a create body, the first limits.errorIssues of them' }),
    issuesTotal: z.number().int().optional().meta({ description: 'how many invalid fields there were in all (issues lists the first limits.errorIssues)' }),
    job: JobSchema.optional().meta({ description: 'the failed job (HK_ERR_JOB_FAILED)' }),
    movedTo: z
      .object({
        hostId: z.string().optional().meta({ description: "the fleet's id of the host, when known" }),
        url: z.string().meta({ description: 'the API of the agent that holds the guest now' }),
        movedAt: z.string().meta({ description: 'RFC 3339' }),
      })
      .optional()
      .meta({ description: 'where the guest went (HK_ERR_GUEST_MOVED: it was migrated away; the Location header is the same path there)' }),
  })
  .meta({ id: 'Error', description: 'Every error; never a stack trace' });

/** Which /health fields are not for everyone. */
const DETAIL = 'only with a valid bearer token when auth.tokens are configured';

export const HealthSchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    version: z.string(),
    uptimeSeconds: z.number().int(),
    guests: z.number().int().optional().meta({ description: DETAIL }),
    jobs: z
      .object({
        queued: z.number().int(),
        running: z.number().int(),
        complete: z.number().int().meta({ description: 'jobs that ended Complete since the agent started (never pruned)' }),
        failed: z.number().int().meta({ description: 'jobs that ended otherwise since the agent started (never pruned)' }),
      })
      .optional()
      .meta({ description: DETAIL }),
    logLinesDropped: z.number().int().optional().meta({ description: `log lines dropped because stdout was not read fast enough; ${DETAIL}` }),
    plugins: z
      .record(z.string(), z.looseObject({ healthy: z.boolean(), message: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }))
      .optional()
      .meta({ description: `each plugin's own health (may name host processes, versions and URIs); ${DETAIL}` }),
  })
  .meta({ id: 'Health' });

// Compile-time agreement between each schema and its wire type (both ways).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type NonNull<T> = { [K in keyof T]: Exclude<T[K], null> };
const agree = <T extends true>(): T => true as T;
agree<Same<NonNull<z.infer<typeof NicSchema>>, Nic>>();
agree<Same<z.infer<typeof DiskSchema>, Disk>>();
agree<Same<Omit<NonNull<z.infer<typeof GuestSchema>>, 'nics' | 'disks'>, Omit<Guest, 'nics' | 'disks' | 'state'> & { state: string }>>();
agree<Same<z.infer<typeof JobSchema>, Job>>();
agree<Same<z.infer<typeof CpuMetricsSchema>, GuestCpuMetrics>>();
agree<Same<z.infer<typeof NicMetricsSchema>, GuestNicMetrics>>();
agree<Same<z.infer<typeof DiskMetricsSchema>, GuestDiskMetrics>>();

export const ImageSchema = z
  .object({
    id: z.string(),
    type: z.string().meta({ description: '"kvm" for VM disk images, "container" for container images' }),
    volume: z.string().meta({ description: "Where the backend keeps it (the file name in the images folder)" }),
    snapshot: z.string(),
    size: z.number().int().meta({ description: 'MiB a disk made from it gets (its virtual size)' }),
    status: z.string().meta({ description: '"complete", or "pending" while it is being fetched or uploaded' }),
  })
  .meta({ id: 'Image', description: 'A guest disk image on this host (mistify rpc.Image)' });

export const SnapshotSchema = z
  .object({
    id: z.string().meta({ description: "The snapshot's name" }),
    size: z.number().meta({ description: 'MiB it holds (what the backend reports; 0 while a create is queued)' }),
  })
  .meta({ id: 'Snapshot', description: 'A snapshot of a guest (all its disks) or of one disk (mistify rpc.Snapshot)' });
