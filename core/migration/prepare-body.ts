/**
 * The body of POST /migrations (the source agent's request to prepare a
 * move here), checked field by field: a 400 says which field is wrong.
 * The guest is the source's record of it; the target takes from it only
 * what a create body could give (plus the disks' sizes), never a host path:
 * its disks and devices are made anew here.
 */
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { Guest } from '../contract/wire-types.js';
import type { PeerAddress } from './migration-records.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const MovingGuestSchema = z.looseObject({
  id: z.string().regex(ID),
  type: z.string(),
  memory: z.number().int().positive(),
  cpu: z.number().int().positive(),
  state: z.string(),
  disks: z.array(z.looseObject({ device: z.string().regex(/^[a-z]+$/), bus: z.string(), size: z.number() })).nullable(),
  nics: z.array(z.looseObject({ name: z.string(), network: z.string(), mac: z.string(), device: z.string() })).nullable(),
  metadata: z.record(z.string(), z.string()).nullable(),
});

export const PrepareBodySchema = z
  .object({
    id: z.string().regex(ID).meta({ description: "The move's id (the source's job id)" }),
    guest: MovingGuestSchema.meta({ description: "The guest as the source holds it" }),
    live: z.boolean().meta({ description: 'true: an incoming QEMU for a live move; false: disks only (cold)' }),
    diskBytes: z.record(z.string(), z.number().int().positive()).meta({ description: "Each disk's virtual size in bytes, by device" }),
    listenHost: z.string().min(1).max(255).meta({ description: 'The address the source reached this agent at: where its NBD and migration ports listen' }),
    source: z.object({ url: z.string().url(), token: z.string().optional() }).meta({ description: 'The source agent and a token it accepts (the target checks the source with it)' }),
  })
  .meta({ id: 'MigrationPrepare' });

export interface PrepareBody {
  id: string;
  guest: Guest;
  live: boolean;
  diskBytes: Record<string, number>;
  listenHost: string;
  source: PeerAddress;
}

export function parsePrepareBody(body: unknown): PrepareBody {
  const parsed = PrepareBodySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw Errors.badRequest(`migration request: ${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  const { guest, ...rest } = parsed.data;
  const moving = { ...guest, disks: guest.disks ?? [], nics: guest.nics ?? [], metadata: guest.metadata ?? {} } as unknown as Guest;
  return { ...rest, guest: moving, source: { url: rest.source.url, ...(rest.source.token ? { token: rest.source.token } : {}) } };
}
