/**
 * Stage answers read as mistify-agent read them: each answer type as the Go
 * struct it is (tags as ../shared/DESIGN.md lists them), read by go-json.ts,
 * so a field a Go sub-agent left out because it was zero reads as that zero,
 * for in-process, isolated and JSON-RPC stages alike (stage-kinds.ts calls
 * these where it checks every answer).
 *
 * One departure from the Go agent, which replaced its stored guest with each
 * answer as decoded: a field the client gave (type, image, nics, disks,
 * memory, cpu, metadata) or the guest's state, answered empty where the
 * stage was sent a value, keeps the value sent. A Go sub-agent that decodes
 * the request's guest and encodes it back leaves a field out only when it
 * was zero already, so for such a sub-agent this changes nothing; a field
 * left out over a sent value comes from a sub-agent on a narrower struct or
 * one that answers a Guest it built afresh (mistify's example sub-agent does
 * for containers), and reading it as zero would lose what the client gave,
 * or leave the guest in no state, from which the lifecycle allows no action.
 * docs/jsonrpc.md has the table.
 */
import { readGo, type GoStruct, type GoVariant } from './go-json.js';
import type { Guest, GuestMetricsResponse, GuestResponse, ImageResponse, SnapshotResponse } from './wire-types.js';

const NIC: GoStruct = {
  struct: { name: 'string', network: 'string', model: 'string', mac: 'string', address: 'string', netmask: 'string', gateway: 'string', device: 'string', vlans: { list: 'int' } },
};

const DISK: GoStruct = { struct: { bus: 'string', device: 'string', size: 'uint', volume: 'string', image: 'string', source: 'string' } };

/** client.Guest. */
export const GUEST_GO_TYPE: GoStruct = {
  struct: {
    id: 'string',
    type: 'string',
    image: 'string',
    nics: { list: NIC },
    disks: { list: DISK },
    state: 'string',
    memory: 'uint',
    cpu: 'uint',
    vnc: 'int',
    metadata: { map: 'string' },
  },
};

/** rpc.GuestResponse; a nil `guest` (absent or null) means the stage changed nothing. */
const GUEST_RESPONSE: GoStruct = { struct: { guest: GUEST_GO_TYPE, message: 'string', retry: 'int' }, optional: ['guest', 'message', 'retry'] };

const CPU_METRICS: GoStruct = { struct: { cpu_time: 'float', vcpu_time: 'float' } };
const DISK_METRICS: GoStruct = {
  struct: { disk: 'string', read_ops: 'int', read_bytes: 'int', read_time: 'float', write_ops: 'int', write_bytes: 'int', write_time: 'float', flush_ops: 'int', flush_time: 'float' },
};
const NIC_COUNTERS: GoStruct = {
  struct: { name: 'string', rx_bytes: 'int', rx_packets: 'int', rx_errors: 'int', rx_drops: 'int', tx_bytes: 'int', tx_packets: 'int', tx_errors: 'int', tx_drops: 'int' },
};
/**
 * A NIC's entry: Go's GuestNicMetrics, or hyperkern's entry for a NIC with
 * nothing to count (user-mode networking, a tap gone), whose `counters`
 * says why and which carries no numbers: zeros would claim no traffic.
 */
const NIC_METRICS: GoVariant = { variant: { key: 'counters', present: { struct: { name: 'string', counters: 'string' } }, absent: NIC_COUNTERS } };

/**
 * rpc.GuestMetricsResponse. Its `guest` is passed on unread: the kernel
 * never uses a metrics answer's guest, and reading it would cost every
 * metrics call a walk over the whole guest.
 */
const METRICS_RESPONSE: GoStruct = {
  struct: { guest: 'raw', type: 'string', cpu: { list: CPU_METRICS }, nic: { map: NIC_METRICS }, disk: { map: DISK_METRICS } },
  optional: ['guest'],
};

const IMAGE_RESPONSE: GoStruct = {
  struct: { images: { list: { struct: { id: 'string', type: 'string', volume: 'string', snapshot: 'string', size: 'uint', status: 'string' } } } },
};

const SNAPSHOT_RESPONSE: GoStruct = { struct: { snapshots: { list: { struct: { id: 'string', size: 'uint' } } } } };

/** Fields kept from the guest sent when the answer has them empty (see the header). */
const KEPT_WHEN_EMPTY = ['type', 'image', 'nics', 'disks', 'state', 'memory', 'cpu', 'metadata'] as const;

function isEmpty(value: unknown): boolean {
  if (value === '' || value === 0) return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

function isEmptyWhereSent(answered: Guest, sent: Guest, key: (typeof KEPT_WHEN_EMPTY)[number]): boolean {
  return isEmpty(answered[key]) && !isEmpty(sent[key]);
}

/**
 * A lifecycle stage's answer as Go reads a GuestResponse, with the answer's
 * guest completed from `sent` (the guest the stage was given) where it
 * left out what the client gave. Throws GoReadError.
 */
export function readGuestResponse(answer: object, sent?: Guest): GuestResponse {
  const response = readGo(answer, GUEST_RESPONSE, 'answer') as GuestResponse;
  const guest = response.guest;
  if (!guest || !sent || !KEPT_WHEN_EMPTY.some((key) => isEmptyWhereSent(guest, sent, key))) return response;
  const completed: Guest = { ...guest };
  for (const key of KEPT_WHEN_EMPTY) if (isEmptyWhereSent(guest, sent, key)) Object.assign(completed, { [key]: sent[key] });
  return { ...response, guest: completed };
}

/** A metrics stage's answer as Go reads a GuestMetricsResponse: a part left out is empty. Throws GoReadError. */
export function readMetricsResponse(answer: object): GuestMetricsResponse {
  return readGo(answer, METRICS_RESPONSE, 'answer') as GuestMetricsResponse;
}

/** An image stage's answer as Go reads an ImageResponse (`images: null` is none). Throws GoReadError. */
export function readImageResponse(answer: object): ImageResponse {
  return readGo(answer, IMAGE_RESPONSE, 'answer') as ImageResponse;
}

/** A snapshot stage's answer as Go reads a SnapshotResponse. Throws GoReadError. */
export function readSnapshotResponse(answer: object): SnapshotResponse {
  return readGo(answer, SNAPSHOT_RESPONSE, 'answer') as SnapshotResponse;
}
