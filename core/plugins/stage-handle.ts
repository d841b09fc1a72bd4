/**
 * A callable stage, whatever runs it: an in-process plugin's handler, an
 * isolated plugin in a child process, or an external sub-agent. The kernel
 * only ever calls stages through this shape.
 */
import type { StageContext, StageKind } from '../contract/plugin-api.js';
import type { GuestMetricsRequest, GuestMetricsResponse, GuestRequest, GuestResponse } from '../contract/wire-types.js';

export interface StageHandle {
  /** Full name, e.g. `qemu.start`. */
  readonly name: string;
  /** Id of the plugin instance that provides it. */
  readonly plugin: string;
  readonly kind: StageKind;
  call(request: GuestRequest | GuestMetricsRequest, ctx: StageContext): Promise<GuestResponse | GuestMetricsResponse | void>;
}
