import { z } from 'zod';

/** How the fleet link reaches etcd. */
export const etcdOptions = z
  .object({
    /** etcd client URLs, e.g. ["http://10.0.0.5:2379"]. */
    endpoints: z.array(z.string().regex(/^(https?:\/\/)?[^\s/]+:\d{1,5}$/, 'an endpoint looks like "http://HOST:PORT"')).min(1),
    /** Every key the agent writes starts with this (see docs/fleet.md). */
    prefix: z.string().regex(/^\/[^\s]*[^/\s]$|^\/[^\s/]+$/, 'a prefix starts with "/" and does not end with one, e.g. "/hyperkern"').default('/hyperkern'),
    /** Seconds the host key outlives the agent's last keepalive (kill -9, partition). */
    leaseTtlSeconds: z.number().int().min(2).max(3600).default(10),
    /** Bound of each etcd call; a slower etcd counts as unreachable. */
    callTimeoutMs: z.number().int().min(100).max(60_000).default(3000),
    /** PEM files for TLS; `ca` alone verifies the server, `cert` + `key` add a client certificate. */
    tls: z.object({ ca: z.string().min(1), cert: z.string().min(1).optional(), key: z.string().min(1).optional() }).strict().optional(),
    /** etcd user; the password is read from `passwordEnv` so it never sits in the config file. */
    auth: z.object({ username: z.string().min(1), passwordEnv: z.string().min(1).default('HYPERKERN_ETCD_PASSWORD') }).strict().optional(),
  })
  .strict();

export const fleetOptions = z
  .object({
    etcd: etcdOptions,
    /** This host's id in the fleet; default: /etc/machine-id. */
    hostId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, ".", "_" and "-", at most 128').optional(),
    /** The API URL other hosts and tools should use; default: the URL the agent listens on. */
    advertiseUrl: z.string().url().optional(),
    /** Guest metadata keys copied into the fleet's guest summaries (others stay local). */
    metadataKeys: z.array(z.string().min(1)).default([]),
    /** What the host offers to guests; default: the machine's CPUs and memory. */
    capacity: z.object({ cpus: z.number().int().positive().optional(), memoryMiB: z.number().int().positive().optional() }).strict().default({}),
    /** Guests whose change waits for etcd at most; beyond, the queue collapses to one full resync. */
    maxQueuedChanges: z.number().int().positive().max(1_000_000).default(10_000),
    /** Milliseconds changes are gathered before one transaction writes them. */
    batchWindowMs: z.number().int().min(0).max(10_000).default(50),
    /**
     * The bearer token the fleet's other agents accept, sent to the one a
     * guest moves to when the move names it by host id (docs/migration.md).
     */
    peerToken: z.string().min(16, 'tokens must be at least 16 characters').optional(),
    /** Per host id, for agents that each accept their own token; wins over peerToken. */
    peerTokens: z.record(z.string(), z.string().min(16, 'tokens must be at least 16 characters')).default({}),
  })
  .strict();

export type FleetOptions = z.infer<typeof fleetOptions>;
export type EtcdOptions = z.infer<typeof etcdOptions>;
