/**
 * What a plugin's stages do in the action plans, so that a config needs only
 * the plugin list: the kernel derives the plan of every action the
 * configured plugins serve (docs/design.md, "Action plans"). A stage named
 * after an action (`start`, `cpuMetrics`, `listSnapshots`, `containerStart`)
 * is that action's work without any declaration; a manifest's `serves`
 * names what the other stages do (checks, other names, long timeouts) and
 * how they compose with other plugins' stages for the same action.
 */

/** One action a stage serves. */
export interface StageRole {
  /** The action, as a config names it: `fetchImage`, `containerStart`, `createSnapshot`. */
  action: string;
  /**
   * A check run inside the request, before any job is queued: a
   * StageRejection it throws is the client's 4xx. Otherwise the stage is
   * the action's work (the job, or the one stage of a query).
   */
  check?: boolean;
  /** The stage's timeout in this action, unless the config gives one; jobs.stageTimeoutSeconds by default. */
  timeoutSeconds?: number;
  /**
   * Manifest ids of plugins whose stages for this action are left out when
   * this plugin is configured too (the libvirt plugin's pool images replace
   * the images plugin's folder).
   */
  replaces?: readonly string[];
  /**
   * The manifest id of the plugin whose part of this action this stage
   * finishes: it runs after that plugin's stages (checks after its checks,
   * work after its work), and is left out when that plugin is not
   * configured (libvirt imports what the images plugin fetched).
   */
  after?: string;
}

/** Stage short name -> the action(s) it serves: an action name, a {@link StageRole}, or a list of them. */
export type StageRoles = Readonly<Record<string, string | StageRole | readonly (string | StageRole)[]>>;

/** A `serves` entry as a list of roles. */
export function rolesOf(entry: string | StageRole | readonly (string | StageRole)[]): StageRole[] {
  const list: readonly (string | StageRole)[] = Array.isArray(entry) ? entry : [entry as string | StageRole];
  return list.map((role) => (typeof role === 'string' ? { action: role } : role));
}
