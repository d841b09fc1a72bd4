/**
 * Config dialects: a plugin may teach the kernel another config file format
 * (the jsonrpc plugin reads mistify-agent's `services` + `actions`). The
 * manifest's `configDialect` translates such a file into a hyperkern config
 * before it is validated; the kernel asks the built-in plugins for their
 * dialects only for a file without a `plugins` list.
 */
import type { StageKind } from './stage-kinds.js';

/** What the kernel tells a dialect about its own vocabulary. */
export interface ConfigDialectContext {
  /** Absolute path of the file, for messages. */
  file: string;
  /** The stage kind an action name (config spelling, e.g. `containerCpuMetrics`) needs. */
  stageKindOf(action: string): StageKind;
  /** Whether the API has no route for this action (its stages are ignored, with a warning). */
  isUnroutedAction(action: string): boolean;
}

/** Returns the translated config, or undefined when `raw` is not this dialect. */
export type ConfigDialect = (raw: Record<string, unknown>, ctx: ConfigDialectContext) => Record<string, unknown> | undefined;

/** Throw from a dialect for a file of its format that is wrong; the kernel reports it as a config error. */
export class ConfigRejection extends Error {
  override readonly name = 'ConfigRejection';
}
