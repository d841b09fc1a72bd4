/**
 * The plans a config does not spell out: for every action the configured
 * plugins serve (a stage named after the action, or a manifest's `serves`
 * entry: core/contract/stage-roles.ts) and the config's `actions` does not
 * name, an entry as the config would have written it. action-plan.ts then
 * resolves derived and configured entries alike, so a derived plan is
 * exactly what an operator could have configured by hand.
 *
 * Composition: checks of every plugin serving an action run, the work of
 * one plugin; a plugin's `replaces` leaves another's stages out, its
 * `after` appends to another's. Two plugins doing the work of one action
 * is a boot error: the operator picks one with an `actions` entry.
 */
import type { StageRefConfig } from '../config/config.js';
import { Errors } from '../errors.js';
import { rolesOf, type StageKind, type StageRoles } from '../contract/plugin-api.js';
import type { LoadedPlugin } from '../plugins/plugin-loader.js';
import { ACTION_ALIASES, UNROUTED_MISTIFY_ACTIONS, splitActionName, validActionNames } from './actions.js';

/** What derivation reads of a configured plugin. */
export interface PluginStages {
  /** Instance id: the stage prefix. */
  id: string;
  /** Manifest id: what other plugins' `replaces` and `after` name. */
  manifestId: string;
  /** Its stages' short names and kinds. */
  stages: Record<string, StageKind>;
  serves?: StageRoles;
}

/** What derivation needs of the loaded plugins. */
export function pluginStagesOf(plugins: LoadedPlugin[]): PluginStages[] {
  return plugins.map((p) => ({
    id: p.id,
    manifestId: p.manifest.id,
    stages: Object.fromEntries(Object.entries(p.stages).map(([short, stage]) => [short, stage.kind])),
    ...(p.manifest.serves ? { serves: p.manifest.serves } : {}),
  }));
}

/** A derived action, shaped as a config entry. */
export interface DerivedAction {
  action: string;
  sync: StageRefConfig[];
  async: StageRefConfig[];
}

interface PlacedRole {
  plugin: string;
  manifestId: string;
  stage: string;
  check: boolean;
  timeoutSeconds?: number;
  replaces: readonly string[];
  after?: string;
}

/** Every action name a plan can be derived for: what a config may name, without aliases and unrouted names. */
export function derivableActions(): string[] {
  const skip = new Set<string>([...Object.keys(ACTION_ALIASES), ...UNROUTED_MISTIFY_ACTIONS]);
  return validActionNames().filter((name) => !skip.has(name));
}

/** A config action name as the plan it makes: `run` is start, `containerRun` containerStart. */
export function canonicalActionName(name: string): string {
  const { guestType, action } = splitActionName(name);
  const plain = ACTION_ALIASES[action] ?? action;
  return guestType ? `${guestType}${plain[0].toUpperCase()}${plain.slice(1)}` : plain;
}

/**
 * Entries for the actions the plugins serve and `configured` (canonical
 * names) does not name, in the order of {@link derivableActions}.
 */
export function deriveActions(plugins: PluginStages[], configured: ReadonlySet<string>, file: string): DerivedAction[] {
  const actions = derivableActions();
  const known = new Set(actions);
  const byAction = new Map<string, PlacedRole[]>();
  for (const plugin of plugins) {
    const serves = plugin.serves ?? {};
    const unknownStage = Object.keys(serves).find((short) => !Object.hasOwn(plugin.stages, short));
    if (unknownStage !== undefined) {
      throw Errors.actionPlan(`plugin "${plugin.id}" declares what its stage "${unknownStage}" serves, but has no such stage (its stages: ${Object.keys(plugin.stages).join(', ') || 'none'})`);
    }
    for (const short of Object.keys(plugin.stages)) {
      const declared = serves[short];
      const roles = declared !== undefined ? rolesOf(declared) : known.has(short) ? [{ action: short }] : [];
      for (const role of roles) {
        if (!known.has(role.action)) {
          throw Errors.actionPlan(`plugin "${plugin.id}" declares that stage "${short}" serves "${role.action}", which is no action. Valid actions: ${actions.join(', ')}`);
        }
        const placed: PlacedRole = { plugin: plugin.id, manifestId: plugin.manifestId, stage: `${plugin.id}.${short}`, check: role.check === true, replaces: role.replaces ?? [] };
        if (role.timeoutSeconds !== undefined) placed.timeoutSeconds = role.timeoutSeconds;
        if (role.after !== undefined) placed.after = role.after;
        byAction.set(role.action, [...(byAction.get(role.action) ?? []), placed]);
      }
    }
  }

  const derived: DerivedAction[] = [];
  for (const action of actions) {
    const roles = byAction.get(action);
    if (!roles || configured.has(action)) continue;
    const entry = composeAction(action, roles, file);
    if (entry) derived.push(entry);
  }
  return derived;
}

/** One action's entry from the roles of every plugin serving it; undefined when no plugin does its work. */
function composeAction(action: string, all: PlacedRole[], file: string): DerivedAction | undefined {
  // A plugin another one replaces for this action takes no part in it.
  const kept = all.filter((r) => !all.some((o) => o.manifestId !== r.manifestId && o.replaces.includes(r.manifestId)));
  // Stages finishing another plugin's part need that plugin's stages here.
  const roles = kept.filter((r) => r.after === undefined || kept.some((o) => o.manifestId === r.after && o.after === undefined));
  const workers = [...new Set(roles.filter((r) => !r.check && r.after === undefined).map((r) => r.plugin))];
  if (workers.length === 0) return undefined;
  if (workers.length > 1) {
    const stages = roles.filter((r) => !r.check && workers.includes(r.plugin)).map((r) => r.stage);
    throw Errors.actionPlan(
      `${file}: plugins ${workers.map((w) => `"${w}"`).join(' and ')} both provide action "${action}" (${stages.join(', ')}); ` +
        `choose with an "actions" entry, e.g. "actions": {"${action}": {"async": ["${stages[0]}"]}}`,
    );
  }
  // Each plugin's own part first, then the parts that finish another's.
  const ordered = [...roles.filter((r) => r.after === undefined), ...roles.filter((r) => r.after !== undefined)];
  const ref = (r: PlacedRole): StageRefConfig => (r.timeoutSeconds === undefined ? r.stage : { stage: r.stage, timeout: r.timeoutSeconds });
  return { action, sync: ordered.filter((r) => r.check).map(ref), async: ordered.filter((r) => !r.check).map(ref) };
}
