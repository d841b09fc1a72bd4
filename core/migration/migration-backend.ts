/**
 * The migrator of a guest's backend: the stage of kind `migration` offered
 * by the plugin that runs the guest's type (the one whose stage ends its
 * `start` plan, as for consoles), opened once. A backend without one
 * answers 501 naming it. Calls into it are wrapped so a refusal
 * (StageRejection) is the client's 4xx and any other failure a 502 naming
 * the backend, never a stack or a host path.
 */
import { Errors, failureMessage, HyperkernError } from '../errors.js';
import { prefixedGuestType, type PrefixedGuestType } from '../jobs/actions.js';
import type { ActionPlans, PlanSet } from '../jobs/action-plan.js';
import type { AgentLogger } from '../logger.js';
import { asPluginLogger } from '../logger.js';
import type { LoadedPlugin } from '../plugins/plugin-loader.js';
import { StageRejection, type GuestMigrator, type MigrationRequest, type Stage } from '../contract/plugin-api.js';
import type { Guest } from '../contract/wire-types.js';

type Backend = { plugin: string; stage: Stage; migrator?: GuestMigrator } | { unsupported: string };

export class MigrationBackends {
  private readonly backends = new Map<PrefixedGuestType | undefined, Backend>();

  constructor(
    plans: ActionPlans,
    plugins: LoadedPlugin[],
    private readonly log: AgentLogger,
  ) {
    this.backends.set(undefined, backendOf(plans, plugins));
    for (const [type, set] of Object.entries(plans.byType)) this.backends.set(type as PrefixedGuestType, backendOf(set, plugins));
  }

  /** The migrator of the guest's backend, or 501 saying why there is none. */
  async of(guest: Pick<Guest, 'id' | 'type'>): Promise<GuestMigrator> {
    const backend = this.backends.get(prefixedGuestType(guest.type));
    if (!backend || 'unsupported' in backend) {
      throw Errors.actionNotConfigured(`guest ${guest.id} cannot be moved: ${backend?.unsupported ?? 'no backend runs guests of its type'} (docs/migration.md)`);
    }
    if (!backend.migrator) {
      const request: MigrationRequest = { migration: 'open', args: {} };
      const ctx = { stage: `${backend.plugin}.migration`, signal: new AbortController().signal, timeoutMs: 10_000, log: asPluginLogger(this.log) };
      backend.migrator = (await backend.stage.invoke(request, ctx)) as GuestMigrator;
    }
    return backend.migrator;
  }
}

/** A backend call: a refusal stays the client's (its status), anything else is a 502 saying what failed. */
export async function backendCall<R>(what: string, call: () => Promise<R>): Promise<R> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof HyperkernError) throw error;
    if (StageRejection.is(error)) throw Errors.stageRejected(error.status, error.message);
    throw Errors.stageFailed(`${what} failed: ${failureMessage(error)}`, { cause: error });
  }
}

function backendOf(set: PlanSet, plugins: LoadedPlugin[]): Backend {
  const plan = set.lifecycle.get('start') ?? set.lifecycle.get('create');
  const pluginId = plan?.async.at(-1)?.handle.plugin;
  const plugin = plugins.find((p) => p.id === pluginId);
  if (!plugin) return { unsupported: 'no backend plugin runs guests of its type' };
  const entry = Object.entries(plugin.stages).find(([, stage]) => stage.kind === 'migration');
  if (entry) return { plugin: plugin.id, stage: entry[1] };
  const declined = plugin.manifest.declines?.migration;
  const why = declined ?? (plugin.config.isolate || plugin.config.command ? 'it runs in a child process, which migration does not cross; run the plugin in-process' : 'it offers no migration stage');
  return { unsupported: `its backend, plugin "${plugin.id}", cannot move guests: ${why}` };
}
