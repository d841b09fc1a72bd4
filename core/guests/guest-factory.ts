/**
 * Turns a POST /guests body into a new Guest: checks every field a client
 * may set, fills defaults, and assigns what the agent owns (id unless the
 * client retries with its own new UUID, NIC names, MACs and host devices,
 * disk devices and sources, state, VNC port).
 *
 * Most clients are Go programs built on mistify's types, and encoding/json
 * sends every field without `omitempty` with its zero value: `""` for an
 * unset string, `0` for an unset number, `null` for a nil slice or map. So
 * here `""`, `0` (where 0 is not a valid value) and `null` all mean "not
 * given": the agent picks the default. Fields the agent owns are ignored,
 * not refused, because a Go cluster manager posts whole Guest objects as it
 * last saw them (state, NIC devices, disk devices and sources filled in).
 * Unknown fields are dropped, as Go's decoder drops them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { Disk, Guest, Nic } from '../contract/wire-types.js';
import { tapName } from '../contract/backend-kit/device-names.js';

const MAX_MEMORY_MIB = 4 * 1024 * 1024; // 4 TiB
const MAX_DISK_MIB = 64 * 1024 * 1024; // 64 TiB
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Case folded in the class, not with /i: the OpenAPI pattern carries no flags. "" lets the agent assign one.
const MAC_OR_EMPTY = /^$|^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** A string field where `""` (Go's zero value) or `null` means "not given". */
const optionalText = (max: number) => z.string().max(max).nullish();
/** A number field where 0 (Go's zero value) or `null` means "not given". */
const optionalCount = (what: string, unit: string, max: number, maxText = `${max} ${unit}`) =>
  z
    .number({ error: `${what} must be a number of ${unit}` })
    .int(`${what} must be a whole number of ${unit}`)
    .nonnegative(`${what} must be at least 1 ${unit} (0 means the default)`)
    .max(max, `${what} must be at most ${maxText}`)
    .nullish();
/** A list where `null` (a nil Go slice) means empty. */
const optionalList = <T extends z.ZodType>(item: T, max: number, what: string) => z.array(item).max(max, `at most ${max} ${what}`).nullish();

const name = z.string().max(64).regex(/^[A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only').nullish();

/** Nic as a client sends it; `device` is the agent's and is not read. */
export const nicInputSchema = z.object({
  name,
  network: optionalText(64),
  model: z.string().max(32).regex(/^[A-Za-z0-9_-]*$/, 'letters, digits, _ and - only').nullish(),
  mac: z.string().regex(MAC_OR_EMPTY, 'a MAC address such as 52:54:00:12:34:56, or "" for one the agent assigns').nullish(),
  address: optionalText(64),
  netmask: optionalText(64),
  gateway: optionalText(64),
  vlans: optionalList(z.number().int().min(1).max(4094), 64, 'VLANs'),
});

/** Disk as a client sends it; `device` and `source` are the agent's and are not read. */
export const diskInputSchema = z.object({
  bus: z.enum(['', 'ide', 'scsi', 'sata', 'virtio'], { error: 'bus must be one of ide, scsi, sata, virtio (or "" for virtio)' }).nullish(),
  size: optionalCount('size', 'MiB', MAX_DISK_MIB, `${MAX_DISK_MIB} MiB (64 TiB)`),
  image: optionalText(255),
  volume: optionalText(255),
});

/**
 * A POST /guests body (also the OpenAPI request schema of that route): a
 * Guest as a client sends it; `state` and `vnc` are the agent's and are not read.
 */
export const guestSchema = z.object({
  id: z.string().nullish(),
  type: z.string().max(32).regex(/^[A-Za-z0-9_-]*$/, 'letters, digits, _ and - only').nullish(),
  image: optionalText(255),
  memory: optionalCount('memory', 'MiB', MAX_MEMORY_MIB),
  cpu: optionalCount('cpu', 'vCPUs', 512),
  nics: optionalList(nicInputSchema, 32, 'NICs'),
  disks: optionalList(diskInputSchema, 26, 'disks'),
  metadata: z.record(z.string().min(1).max(256), z.string({ error: 'metadata values must be strings' }).max(65536)).nullish(),
});

/** Parse a create request; throws a 400 that names the field. */
export function parseNewGuest(body: unknown, maxIssues = 20): { guest: Guest; clientId: boolean } {
  // `null` is what Go's json.Marshal makes of a nil *Guest: a create with every default.
  if (body === null || body === undefined) body = {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw Errors.badRequest('the body must be a JSON object describing the guest (memory, cpu, disks, nics, metadata...)');
  }
  const parsed = guestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : 'body';
    // Bounded: 40,000 bad values once made a 2.8 MB answer.
    const all = parsed.error.issues;
    const issues = all.slice(0, maxIssues).map((i) => ({ path: i.path.join('.'), message: i.message.slice(0, 200) }));
    throw Errors.badRequest(`${where}: ${issue.message}`, { details: { issues, issuesTotal: all.length } });
  }
  const input = parsed.data;
  const clientId = !!input.id;
  if (clientId && !UUID.test(input.id!)) {
    throw Errors.badRequest(`id: "${input.id}" is not a UUID; leave id out (or "") and the agent assigns one, or send a new UUID to make retries idempotent`);
  }
  const id = clientId ? input.id!.toLowerCase() : randomUUID();
  const inputDisks = input.disks ?? [];
  for (const [i, disk] of inputDisks.entries()) {
    if (!disk.size && !disk.image) throw Errors.badRequest(`disks.${i}: give a size in MiB or an image to copy`);
  }
  const names = new Set<string>();
  const nics: Nic[] = (input.nics ?? []).map((nic, i) => {
    const nicName = nic.name || `net${i}`;
    if (names.has(nicName)) throw Errors.badRequest(`nics.${i}.name: "${nicName}" is used by two NICs`);
    names.add(nicName);
    return {
      name: nicName,
      network: nic.network ?? '',
      model: nic.model || 'virtio',
      mac: nic.mac ? nic.mac.toLowerCase() : macFor(id, i),
      address: nic.address ?? '',
      netmask: nic.netmask ?? '',
      gateway: nic.gateway ?? '',
      device: tapName(id, i),
      vlans: nic.vlans ?? [],
    };
  });
  const perBus = new Map<string, number>();
  const disks: Disk[] = inputDisks.map((disk) => {
    const bus = disk.bus || 'virtio';
    const prefix = bus === 'virtio' ? 'vd' : bus === 'ide' ? 'hd' : 'sd';
    const n = perBus.get(prefix) ?? 0;
    perBus.set(prefix, n + 1);
    return { bus, device: prefix + String.fromCharCode(97 + n), size: disk.size ?? 0, volume: disk.volume ?? '', image: disk.image ?? '', source: '' };
  });
  const guest: Guest = {
    id,
    type: input.type ?? '',
    image: input.image ?? '',
    nics,
    disks,
    state: 'creating',
    memory: input.memory || 512,
    cpu: input.cpu || 1,
    vnc: 0,
    metadata: input.metadata ?? {},
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
