/**
 * Generic precondition stages for the sync part of actions. They need no
 * hypervisor: `guard.requireState` refuses an action with 409 when the
 * guest's state is not one the action may start from, so wrong-state
 * requests fail inside the request instead of as a failed job later. The
 * states come from the kernel's lifecycle table; `args.states` in the
 * config replaces them for that action (to narrow or widen them).
 */
import { injectable } from 'tsyringe';
import { LIFECYCLE, PLUGIN_API_VERSION, StageRejection, actionStage, definePlugin, describeStates, isLifecycleAction, type GuestRequest } from '../../core/contract/index.js';

@injectable()
export class GuardPlugin {
  requireState({ guest, action, args }: GuestRequest): void {
    const states = args.states ?? (isLifecycleAction(action) ? LIFECYCLE[action].from : undefined);
    if (!Array.isArray(states) || states.length === 0 || !states.every((s) => typeof s === 'string')) {
      throw new Error(`guard.requireState needs args.states, a list of state names, in the config (the lifecycle table has none for "${action}")`);
    }
    if (!states.includes(guest.state)) {
      throw new StageRejection(409, `guest is ${guest.state || 'in no state'}; ${action} needs ${describeStates(states)}`);
    }
  }
}

export default definePlugin({
  id: 'guard',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'Preconditions for actions (guest state checks)',
  create: GuardPlugin,
  stages: (guard) => ({ requireState: actionStage((request) => guard.requireState(request)) }),
});
