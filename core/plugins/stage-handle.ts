/**
 * A callable stage, whatever runs it: an in-process plugin's handler, an
 * isolated plugin in a child process, or an external sub-agent. The kernel
 * only ever calls stages through this shape; the request and the answer
 * are shape-checked by the stage's kind (core/contract/stage-kinds.ts).
 */
import type { StageContext, StageKind, StageRequest, StageResponse } from '../contract/plugin-api.js';

export interface StageHandle {
  /** Full name, e.g. `qemu.start`. */
  readonly name: string;
  /** Id of the plugin instance that provides it. */
  readonly plugin: string;
  readonly kind: StageKind;
  call(request: StageRequest, ctx: StageContext): Promise<StageResponse>;
}
