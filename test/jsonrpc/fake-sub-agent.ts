/**
 * A mistify sub-agent written for the tests straight from the wire format
 * (JSON-RPC 1.0 over HTTP, as gorilla/rpc's json codec serves it): POST
 * `{"method":"Service.Method","params":[REQUEST],"id":N}` to its path,
 * answer `{"result":RESPONSE,"error":null,"id":N}` or `{"result":null,
 * "error":"text","id":N}`; an unknown method is HTTP 400 with a plain-text
 * body. It keeps guests' power states in memory and misbehaves when a
 * guest's metadata says so:
 *   fake.error = METHOD    answer that method with an error string
 *   fake.slow = METHOD:MS  answer that method after MS milliseconds
 * Snapshots are kept as mistify-agent-image keeps them in ZFS: per dataset
 * (`guests/ID`, `guests/ID/disk-N`, made by Create), named `pool/DATASET@NAME`,
 * recursive for a guest; POST /snapshots/download streams one (chunked).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestAgent } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';

export interface ReceivedCall {
  method: string;
  params: any[];
  id: unknown;
  contentType: string | undefined;
  path: string;
}

const TRANSITIONS: Record<string, string> = {
  Create: 'off', Run: 'running', Shutdown: 'shutdown', Reboot: 'running', Restart: 'running',
  Poweroff: 'off', Suspend: 'suspended', Delete: 'deleted',
};

export class FakeSubAgent {
  readonly calls: ReceivedCall[] = [];
  connections = 0;
  inFlight = 0;
  maxInFlight = 0;
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    readonly service: string,
    readonly path = '/_mistify_RPC_',
  ) {}

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Images it "holds", as mistify-agent-image would (id -> Image). */
  readonly images = new Map<string, Record<string, unknown>>();

  /** Snapshots it "holds". */
  readonly zfs = new FakeZfs();
  /** Requests its download endpoint received. */
  readonly downloads: any[] = [];

  /** mistify-agent-image's DownloadSnapshot: the body is a SnapshotRequest; the answer the bytes, chunked. */
  private download(body: Buffer, res: ServerResponse): void {
    const request = JSON.parse(body.toString('utf8'));
    this.downloads.push(request);
    const content = this.zfs.contentOf(request.id);
    if (content === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`dataset ${request.id} does not exist`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    // Several writes without a length: Node sends them chunked, as Go's http server does.
    for (let i = 0; i < 4; i++) res.write(content.subarray((i * content.length) / 4, ((i + 1) * content.length) / 4));
    res.end();
  }

  callsTo(method: string): ReceivedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method === 'POST' && req.url === '/snapshots/download') return this.download(Buffer.concat(chunks), res);
    if (req.method !== 'POST' || req.url !== this.path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no RPC endpoint at ${req.method} ${req.url}`);
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const call: ReceivedCall = { method: body.method, params: body.params, id: body.id, contentType: req.headers['content-type'], path: req.url! };
    this.calls.push(call);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const [service, name] = String(body.method).split('.');
      const request = body.params?.[0];
      const metadata: Record<string, string> = request?.guest?.metadata ?? {};
      const slow = metadata['fake.slow']?.split(':');
      if (slow && slow[0] === body.method) await new Promise((r) => setTimeout(r, Number(slow[1])));
      if (service !== this.service || !(name in TRANSITIONS || name.endsWith('Metrics') || name in IMAGE_METHODS || name in SNAPSHOT_METHODS)) {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end(`rpc: can't find method "${body.method}"`);
        return;
      }
      const reply = (result: unknown, error: string | null) => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ result, error, id: body.id }) + '\n');
      };
      if (metadata['fake.error'] === body.method) return reply(null, `${body.method} failed: the fake sub-agent was told to fail`);
      if (name in IMAGE_METHODS) {
        const outcome = IMAGE_METHODS[name](this.images, request);
        return typeof outcome === 'string' ? reply(null, outcome) : reply(outcome, null);
      }
      if (name in SNAPSHOT_METHODS) {
        const outcome = SNAPSHOT_METHODS[name](this.zfs, request);
        return typeof outcome === 'string' ? reply(null, outcome) : reply(outcome, null);
      }
      if (name === 'Create') this.zfs.addGuest(request.guest.id, request.guest.disks?.length ?? 0);
      if (name.endsWith('Metrics')) {
        // mistify sub-agents fill one part; this one fills all three so the test sees the agent pick.
        return reply({
          guest: request.guest,
          type: request.type,
          cpu: [{ cpu_time: 2.5, vcpu_time: 2 }],
          nic: { eth0: { name: 'eth0', rx_bytes: 10, rx_packets: 1, rx_errors: 0, rx_drops: 0, tx_bytes: 20, tx_packets: 2, tx_errors: 0, tx_drops: 0 } },
          disk: { vda: { disk: 'vda', read_ops: 1, read_bytes: 512, read_time: 0.1, write_ops: 2, write_bytes: 1024, write_time: 0.2, flush_ops: 0, flush_time: 0 } },
        }, null);
      }
      return reply({ guest: { ...request.guest, state: TRANSITIONS[name] }, message: `fake ${name} done` }, null);
    } finally {
      this.inFlight -= 1;
    }
  }
}

type ImageMethod = (images: Map<string, Record<string, unknown>>, request: { id: string; type: string; source: string }) => object | string;

/** mistify-agent-image's methods on an ImageRequest, answering an ImageResponse (or an error string). */
const IMAGE_METHODS: Record<string, ImageMethod> = {
  ListImages: (images, request) => ({ images: [...images.values()].filter((i) => !request.type || i.type === request.type) }),
  GetImage: (images, request) => ({ images: images.has(request.id) ? [images.get(request.id)] : [] }),
  RequestImage: (images, request) => {
    if (!request.source) return 'source is required';
    const image = { id: request.id, type: request.type || 'kvm', volume: `images/${request.id}`, snapshot: '', size: 10, status: 'complete' };
    images.set(request.id, image);
    return { images: [image] };
  },
  DeleteImage: (images, request) => (images.delete(request.id) ? { images: [] } : `image ${request.id} not found`),
};

/** ZFS datasets and snapshots, as far as mistify-agent-image's snapshot methods see them. */
export class FakeZfs {
  static readonly POOL = 'mistify';
  readonly datasets = new Set<string>();
  /** Full snapshot names (POOL/DATASET@NAME) in creation order, with what the dataset held then. */
  readonly snapshots: { id: string; written: number }[] = [];
  /** What each dataset holds: bumped by write(). */
  readonly written = new Map<string, number>();

  addGuest(id: string, disks: number): void {
    this.datasets.add(`guests/${id}`);
    for (let i = 0; i < disks; i++) this.datasets.add(`guests/${id}/disk-${i}`);
  }

  /** The guest "writes" to a dataset. */
  write(dataset: string): void {
    this.written.set(dataset, (this.written.get(dataset) ?? 0) + 1);
  }

  full(dataset: string): string {
    return `${FakeZfs.POOL}/${dataset}`;
  }

  /** The dataset and its descendants. */
  tree(dataset: string): string[] {
    return [...this.datasets].filter((d) => d === dataset || d.startsWith(`${dataset}/`));
  }

  contentOf(snapshotId: string): Buffer | undefined {
    const found = this.snapshots.find((s) => s.id === this.full(snapshotId) || s.id === snapshotId);
    return found ? Buffer.alloc(96 * 1024, `written ${found.written};`) : undefined;
  }
}

type SnapshotMethod = (zfs: FakeZfs, request: { id: string; dest: string; recursive: boolean; destroyMoreRecent: boolean }) => object | string;

const wire = (s: { id: string; written: number }) => ({ id: s.id, size: 1 + s.written });

/** mistify-agent-image's snapshot methods (snapshot.go), on the fake's datasets. */
const SNAPSHOT_METHODS: Record<string, SnapshotMethod> = {
  CreateSnapshot: (zfs, { id, dest, recursive }) => {
    if (!id) return 'need an id';
    if (!zfs.datasets.has(id)) return `dataset ${id} does not exist`;
    if (!dest) return 'need a dest';
    if (!/^[a-zA-Z0-9_\-:.]+$/.test(dest)) return 'invalid snapshot dest';
    const made = (recursive ? zfs.tree(id) : [id]).map((d) => ({ id: `${zfs.full(d)}@${dest}`, written: zfs.written.get(d) ?? 0 }));
    if (made.some((m) => zfs.snapshots.some((s) => s.id === m.id))) return `snapshot ${made[0].id} already exists`;
    zfs.snapshots.push(...made);
    return { snapshots: made.map(wire) };
  },
  ListSnapshots: (zfs, { id }) => ({
    snapshots: zfs.snapshots.filter((s) => s.id.startsWith(`${zfs.full(id)}@`) || s.id.startsWith(`${zfs.full(id)}/`)).map(wire),
  }),
  GetSnapshot: (zfs, { id }) => {
    const found = zfs.snapshots.find((s) => s.id === zfs.full(id));
    return found ? { snapshots: [wire(found)] } : `dataset ${id} does not exist`;
  },
  DeleteSnapshot: (zfs, { id, recursive }) => {
    const [dataset, name] = id.split('@');
    const gone = zfs.snapshots.filter((s) => s.id === zfs.full(id) || (recursive && s.id.startsWith(`${zfs.full(dataset)}/`) && s.id.endsWith(`@${name}`)));
    if (!gone.some((s) => s.id === zfs.full(id))) return `dataset ${id} does not exist`;
    for (const s of gone) zfs.snapshots.splice(zfs.snapshots.indexOf(s), 1);
    return { snapshots: gone.map(wire) };
  },
  RollbackSnapshot: (zfs, { id, destroyMoreRecent }) => {
    const [dataset] = id.split('@');
    const at = zfs.snapshots.findIndex((s) => s.id === zfs.full(id));
    if (at < 0) return `dataset ${id} does not exist`;
    const later = zfs.snapshots.slice(at + 1).filter((s) => s.id.startsWith(`${zfs.full(dataset)}@`));
    if (later.length > 0 && !destroyMoreRecent) return `cannot rollback to '${zfs.full(id)}': more recent snapshots or bookmarks exist`;
    for (const s of later) zfs.snapshots.splice(zfs.snapshots.indexOf(s), 1);
    zfs.written.set(dataset, zfs.snapshots[at].written);
    return { snapshots: [wire(zfs.snapshots[at])] };
  },
};

/**
 * A fake sub-agent for a describe block and the in-process agent whose
 * config, made from the sub-agent's port, points at it: the sub-agent is up
 * before the agent starts and goes after it stopped.
 */
export function subAgentSuite(service: string, config: (port: number) => object): { sub: FakeSubAgent; agent: TestAgent } {
  const sub = new FakeSubAgent(service);
  before(async () => {
    await sub.start();
  });
  const agent = suiteAgent(() => ({ config: config(sub.port) }));
  after(async () => {
    await sub.stop();
  });
  return { sub, agent };
}
