/**
 * The action plans as `--check` prints them: per action, its sync stages
 * (run in the request) and async stages (its job), and whether the config's
 * `actions` gave the plan or the kernel derived it from the plugins. It
 * reads every plan family of ActionPlans alike, so a new family is printed
 * without changes here.
 */
import type { ActionPlans, PlanOrigin } from './action-plan.js';
import type { PlannedStage } from '../plugins/stage-runner.js';

interface PlanLine {
  action: string;
  origin: PlanOrigin | undefined;
  sync: PlannedStage[];
  async: PlannedStage[];
}

/** A plan of any family: lifecycle, image and snapshot plans have sync and async stages; metrics plans one stage. */
interface AnyPlan {
  action?: string;
  configName?: string;
  sync?: PlannedStage[];
  async?: PlannedStage[];
  stage?: PlannedStage;
}

const isPlannedStage = (value: unknown): value is PlannedStage => typeof value === 'object' && value !== null && 'handle' in value && 'timeoutMs' in value;

function linesOf(plans: object, origins: Map<string, PlanOrigin>): PlanLine[] {
  const lines: PlanLine[] = [];
  for (const [familyName, family] of Object.entries(plans)) {
    if (family instanceof Map) {
      for (const [key, value] of family as Map<string, AnyPlan>) {
        if (typeof value !== 'object' || value === null) continue;
        const action = value.configName ?? (typeof key === 'string' ? key : String(value.action));
        const sync = value.sync ?? (value.stage ? [value.stage] : []);
        lines.push({ action, origin: origins.get(action), sync, async: value.async ?? [] });
      }
    } else if (isPlannedStage(family)) {
      // A family of one plan of one stage, named after its action (vnc).
      lines.push({ action: familyName, origin: origins.get(familyName), sync: [family], async: [] });
    } else if (typeof family === 'object' && family !== null) {
      // byType: the plan sets of container guests, shaped as the top level.
      for (const set of Object.values(family)) if (typeof set === 'object' && set !== null) lines.push(...linesOf(set, origins));
    }
  }
  return lines;
}

function stageList(stages: PlannedStage[], defaultTimeoutMs: number): string {
  return stages.map((s) => (s.timeoutMs === defaultTimeoutMs ? s.handle.name : `${s.handle.name} (timeout ${s.timeoutMs / 1000} s)`)).join(', ');
}

/** The plan, one line per action, configured plans first in config order. */
export function planReport(plans: ActionPlans, defaultTimeoutMs: number): string {
  const lines = linesOf(plans, plans.origins);
  const order = [...plans.origins.keys()];
  lines.sort((a, b) => (order.indexOf(a.action) + 1 || order.length + 1) - (order.indexOf(b.action) + 1 || order.length + 1));
  const width = Math.max(0, ...lines.map((l) => l.action.length));
  const out = lines.map((l) => {
    const parts = [l.sync.length ? `sync ${stageList(l.sync, defaultTimeoutMs)}` : '', l.async.length ? `async ${stageList(l.async, defaultTimeoutMs)}` : ''].filter(Boolean);
    return `  ${l.action.padEnd(width)}  ${(l.origin ?? 'configured').padEnd(10)}  ${parts.join('; ')}`;
  });
  const derived = lines.filter((l) => l.origin === 'derived').length;
  return (
    `action plans (${derived} derived from the plugins, ${lines.length - derived} from the config's "actions"; ` +
    `sync stages run in the request, async ones as the job):\n${out.join('\n') || '  (none)'}\n`
  );
}
