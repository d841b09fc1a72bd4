/**
 * Turns a POST /guests body into a new Guest: checks every field a client
 * may set, fills defaults, and assigns what the agent owns (id unless the
 * client retries with its own new UUID, NIC names, MACs and host devices,
 * disk devices). Fields the agent owns are ignored if a client sends them,
 * since mistify clients may post whole Guest objects back.
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { Disk, Guest, Nic } from '../contract/wire-types.js';

const MAX_MEMORY_MIB = 4 * 1024 * 1024; // 4 TiB
const MAX_DISK_MIB = 64 * 1024 * 1024; // 64 TiB
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Case folded in the class, not with /i: the OpenAPI pattern carries no flags.
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

const name = z.string().max(64).regex(/^[A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only');

const nicSchema = z.object({
  name: name.optional(),
  network: z.string().max(64).default(''),
  model: z.string().max(32).regex(/^[A-Za-z0-9_-]*$/, 'letters, digits, _ and - only').default('virtio'),
  mac: z.string().regex(MAC, 'a MAC address such as 52:54:00:12:34:56').optional().or(z.literal('')),
  address: z.string().max(64).default(''),
  netmask: z.string().max(64).default(''),
  gateway: z.string().max(64).default(''),
  vlans: z.array(z.number().int().min(1).max(4094)).max(64).default([]),
});

const diskSchema = z.object({
  bus: z.enum(['ide', 'scsi', 'sata', 'virtio']).default('virtio'),
  size: z
    .number({ error: 'size must be a number of MiB' })
    .int('size must be a whole number of MiB')
    .positive('size must be at least 1 MiB')
    .max(MAX_DISK_MIB, `size must be at most ${MAX_DISK_MIB} MiB (64 TiB)`)
    .optional(),
  image: z.string().max(255).default(''),
  volume: z.string().max(255).default(''),
  source: z.string().max(4096).default(''),
});

/** A POST /guests body (also the OpenAPI request schema of that route). */
export const guestSchema = z.object({
  id: z.string().optional(),
  type: z.string().max(32).default(''),
  image: z.string().max(255).default(''),
  memory: z
    .number({ error: 'memory must be a number of MiB' })
    .int('memory must be a whole number of MiB')
    .positive('memory must be at least 1 MiB')
    .max(MAX_MEMORY_MIB, `memory must be at most ${MAX_MEMORY_MIB} MiB`)
    .default(512),
  cpu: z.number({ error: 'cpu must be a number of vCPUs' }).int('cpu must be a whole number').positive('cpu must be at least 1').max(512, 'cpu must be at most 512').default(1),
  nics: z.array(nicSchema).max(32, 'at most 32 NICs').default([]),
  disks: z.array(diskSchema).max(26, 'at most 26 disks').default([]),
  metadata: z.record(z.string().min(1).max(256), z.string({ error: 'metadata values must be strings' }).max(65536)).default({}),
});

/** Parse a create request; throws a 400 that names the field. */
export function parseNewGuest(body: unknown): { guest: Guest; clientId: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw Errors.badRequest('the body must be a JSON object describing the guest (memory, cpu, disks, nics, metadata...)');
  }
  const parsed = guestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : 'body';
    throw Errors.badRequest(`${where}: ${issue.message}`, { details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) } });
  }
  const input = parsed.data;
  const clientId = input.id !== undefined && input.id !== '';
  if (clientId && !UUID.test(input.id!)) {
    throw Errors.badRequest(`id: "${input.id}" is not a UUID; leave id out and the agent assigns one, or send a new UUID to make retries idempotent`);
  }
  const id = clientId ? input.id!.toLowerCase() : randomUUID();
  for (const [i, disk] of input.disks.entries()) {
    if (disk.size === undefined && !disk.image) throw Errors.badRequest(`disks.${i}: give a size in MiB or an image to copy`);
  }
  const names = new Set<string>();
  const nics: Nic[] = input.nics.map((nic, i) => {
    const nicName = nic.name || `net${i}`;
    if (names.has(nicName)) throw Errors.badRequest(`nics.${i}.name: "${nicName}" is used by two NICs`);
    names.add(nicName);
    return {
      name: nicName,
      network: nic.network,
      model: nic.model,
      mac: nic.mac ? nic.mac.toLowerCase() : macFor(id, i),
      address: nic.address,
      netmask: nic.netmask,
      gateway: nic.gateway,
      device: tapName(id, i),
      vlans: nic.vlans,
    };
  });
  const perBus = new Map<string, number>();
  const disks: Disk[] = input.disks.map((disk) => {
    const prefix = disk.bus === 'virtio' ? 'vd' : disk.bus === 'ide' ? 'hd' : 'sd';
    const n = perBus.get(prefix) ?? 0;
    perBus.set(prefix, n + 1);
    return { bus: disk.bus, device: prefix + String.fromCharCode(97 + n), size: disk.size ?? 0, volume: disk.volume, image: disk.image, source: disk.source };
  });
  const guest: Guest = {
    id,
    type: input.type,
    image: input.image,
    nics,
    disks,
    state: 'creating',
    memory: input.memory,
    cpu: input.cpu,
    vnc: 0,
    metadata: input.metadata,
  };
  return { guest, clientId };
}

/**
 * A stable, locally administered, unicast MAC derived from the guest id and
 * NIC index: the same guest keeps its MACs across restarts and re-creates.
 */
export function macFor(guestId: string, index: number): string {
  const digest = createHash('sha256').update(`${guestId}/${index}`).digest();
  const bytes = [0x52, 0x54, 0x00, digest[0], digest[1], digest[2]];
  bytes[0] = (bytes[0] | 0x02) & 0xfe;
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Host-side device name: at most 15 characters (Linux IFNAMSIZ - 1). */
export function tapName(guestId: string, index: number): string {
  return `hk${guestId.replace(/-/g, '').slice(0, 8)}n${index}`;
}
