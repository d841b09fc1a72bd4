import { z } from 'zod';

/** mistify-agent's default RPC path (rpc.RPCPath). */
export const MISTIFY_RPC_PATH = '/_mistify_RPC_';

/**
 * One mistify sub-agent service, as mistify-agent's `services.NAME` described
 * it (`port`, `path`, `max_pending`), plus the methods to offer as stages.
 */
export const jsonRpcOptions = z
  .object({
    /** TCP port on 127.0.0.1 where the sub-agent serves JSON-RPC over HTTP. */
    port: z.number().int().min(1).max(65535),
    /**
     * HTTP path of the endpoint; empty means mistify's default. A download
     * stage POSTs its SnapshotRequest here and streams the answer, so
     * mistify configs give downloads their own service entry with
     * mistify-agent-image's `/snapshots/download`.
     */
    path: z
      .string()
      .refine((p) => p === '' || p.startsWith('/'), 'a path starts with "/"')
      .default(MISTIFY_RPC_PATH)
      .transform((p) => p || MISTIFY_RPC_PATH),
    /** Calls in flight at once; 0 or unset means 4, mistify-agent's default. */
    max_pending: z
      .number()
      .int()
      .nonnegative()
      .max(1024)
      .default(0)
      .transform((n) => n || 4),
    /**
     * Sub-agent methods offered as stages, "Service.Method" → stage kind.
     * The stage's name is the method: instance `libvirt` with method
     * `Libvirt.CpuMetrics` gives stage `libvirt.Libvirt.CpuMetrics`.
     */
    methods: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/, 'a method is "Service.Method"'), z.enum(['action', 'metrics', 'image', 'snapshot', 'snapshotDownload']))
      .default({}),
  })
  .strict();

export type JsonRpcOptions = z.infer<typeof jsonRpcOptions>;
