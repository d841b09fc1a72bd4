/**
 * The bridge to sub-agents written for the Go mistify-agent: each instance
 * is one mistify "service" (a JSON-RPC 1.0 server on 127.0.0.1), and each
 * configured method is a stage named after it, e.g. `libvirt.Libvirt.Start`.
 * A lifecycle stage sends mistify's GuestRequest and takes its
 * GuestResponse; a metrics stage sends GuestMetricsRequest and takes
 * GuestMetricsResponse; an image stage sends ImageRequest and takes
 * ImageResponse (mistify-agent-image's methods); a snapshot stage sends
 * mistify's SnapshotRequest (entity ids as mistify-agent made them, see
 * mistify-snapshots.ts) and takes SnapshotResponse; a download stage POSTs
 * the SnapshotRequest to the service's path and streams the answer. docs/jsonrpc.md has the config mapping.
 */
import { inject, injectable } from 'tsyringe';
import {
  PLUGIN_API_VERSION,
  Tokens,
  STAGE_KINDS,
  defineStage,
  definePlugin,
  type Logger,
  type PluginHealth,
  type PluginInstance,
  type StageKind,
  type StageRequest,
  type StageRequestOf,
  type StageResponseOf,
  type StageContext,
  type StageSet,
  type SnapshotDownload,
  type SnapshotResponse,
  type SnapshotStageRequest,
  StageRejection,
} from '../../core/contract/index.js';
import { datasetsOf, fromMistifySnapshots, toMistifySnapshotRequest } from './mistify-snapshots.js';
import { JsonRpcClient, JsonRpcError } from './json-rpc-client.js';
import { translateMistifyConfig } from './mistify-config.js';
import { withKernelState } from './libvirt-states.js';
import { jsonRpcOptions, type JsonRpcOptions } from './options.js';

@injectable()
export class JsonRpcPlugin implements PluginInstance {
  /** One stage per configured method. */
  readonly stages: StageSet;
  private readonly client: JsonRpcClient;
  private calls = 0;
  private failures = 0;
  /** Set while the sub-agent cannot be reached; cleared by any answer. */
  private unreachable: string | undefined;

  constructor(
    @inject(Tokens.Options) options: JsonRpcOptions,
    @inject(Tokens.PluginId) private readonly id: string,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {
    this.client = new JsonRpcClient({ port: options.port, path: options.path, maxPending: options.max_pending });
    this.stages = Object.fromEntries(
      Object.entries(options.methods).map(([method, kind]) => {
        if (kind === 'snapshot') return [method, defineStage('snapshot', (request, ctx) => this.snapshot(method, request, ctx))];
        if (kind === 'snapshotDownload') return [method, defineStage('snapshotDownload', (request, ctx) => this.download(request, ctx))];
        return [method, defineStage(kind, (request, ctx) => this.call(method, kind, request, ctx))];
      }),
    );
  }

  health(): PluginHealth {
    const details = { url: this.client.url, calls: this.calls, failures: this.failures, ...this.client.stats };
    if (this.unreachable) return { healthy: false, message: `sub-agent "${this.id}" unreachable: ${this.unreachable}`, details };
    return { healthy: true, message: `mistify sub-agent at ${this.client.url}`, details };
  }

  async stop(): Promise<void> {
    await this.client.close();
  }

  /**
   * A snapshot method. A guest-wide rollback is one call per dataset (the
   * guest's, then each disk's): a ZFS rollback is not recursive, and a guest
   * snapshot covers every disk. "does not exist" answers become 404s.
   */
  private async snapshot(method: string, request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> {
    const entities = request.operation === 'rollbackSnapshot' ? datasetsOf(request) : [undefined];
    let first: SnapshotResponse | undefined;
    for (const entity of entities) {
      const mistify = toMistifySnapshotRequest(request, entity);
      let result: SnapshotResponse;
      try {
        result = await this.call(method, 'snapshot', mistify as unknown as SnapshotStageRequest, ctx);
      } catch (error) {
        if (error instanceof JsonRpcError && /does not exist|not found|no such/i.test(error.message)) throw new StageRejection(404, error.message);
        throw error;
      }
      // Read here, before the datasets in it are named as the kernel names snapshots (the kernel reads the result again).
      const read = STAGE_KINDS.snapshot.checkResponse(result);
      if (!read.ok) throw new JsonRpcError(`${method} at ${this.client.url} answered ${read.problem}`);
      first ??= fromMistifySnapshots(request, read.value);
    }
    return first!;
  }

  /**
   * A download, as mistify-agent's stream stages did it: POST the
   * SnapshotRequest to the service's path (mistify-agent-image serves
   * `/snapshots/download`), its answer streamed on, never read here.
   */
  private async download(request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotDownload> {
    this.calls += 1;
    try {
      const { body, size } = await this.client.stream(toMistifySnapshotRequest(request), ctx.signal, ctx.timeoutMs);
      this.unreachable = undefined;
      return size === undefined ? { stream: body } : { stream: body, size };
    } catch (error) {
      this.failures += 1;
      const status = ((error as Error).cause as { status?: number } | undefined)?.status;
      if (status === 404) throw new StageRejection(404, (error as Error).message);
      if (!ctx.signal.aborted) this.log.warn({ url: this.client.url, error: (error as Error).message }, 'sub-agent download failed');
      throw error;
    }
  }

  /**
   * One JSON-RPC call. The answer goes back as the sub-agent sent it (a
   * lifecycle answer's state in the kernel's names): the kernel checks it
   * and reads it as Go would, as it does every stage's answer.
   */
  private async call<K extends StageKind>(method: string, kind: K, request: StageRequestOf<K>, ctx: StageContext): Promise<StageResponseOf<K>> {
    this.calls += 1;
    try {
      const result = await this.client.call(method, toMistifyRequest(request), ctx.signal, ctx.timeoutMs);
      this.unreachable = undefined;
      return (kind === 'action' ? withKernelState(result) : result) as StageResponseOf<K>;
    } catch (error) {
      this.failures += 1;
      if (error instanceof JsonRpcError && /connection refused|closed the connection/.test(error.message)) this.unreachable = error.message;
      if (!ctx.signal.aborted) this.log.warn({ method, error: (error as Error).message }, 'sub-agent call failed');
      throw error;
    }
  }
}

/**
 * mistify's requests carry `args` as map[string]string; a Go sub-agent
 * cannot decode a number there, so every value goes as a string.
 */
function toMistifyRequest(request: StageRequest): StageRequest {
  // An ImageRequest and a SnapshotRequest have no args in mistify's rpc package.
  if (!('args' in request)) return request;
  const args: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.args ?? {})) {
    if (value !== undefined && value !== null) args[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return { ...request, args };
}

export default definePlugin({
  id: 'jsonrpc',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: "Bridge to mistify-agent sub-agents (JSON-RPC 1.0 over HTTP)",
  options: jsonRpcOptions,
  create: JsonRpcPlugin,
  stages: (bridge) => bridge.stages,
  // mistify-agent config files (services + actions + dbpath) load as is.
  configDialect: translateMistifyConfig,
});
