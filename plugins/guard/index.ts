/**
 * Generic precondition stages for the sync part of actions. They need no
 * hypervisor: `guard.requireState` refuses an action with 409 when the
 * guest's state is not one of `args.states`, so wrong-state requests fail
 * inside the request instead of as a failed job later.
 */
import { injectable } from 'tsyringe';
import { PLUGIN_API_VERSION, StageRejection, actionStage, definePlugin, type GuestRequest } from '../../core/contract/index.js';

@injectable()
export class GuardPlugin {
  requireState({ guest, action, args }: GuestRequest): void {
    const states = args.states;
    if (!Array.isArray(states) || states.length === 0 || !states.every((s) => typeof s === 'string')) {
      throw new Error('guard.requireState needs args.states, a list of state names, in the config');
    }
    if (!states.includes(guest.state)) {
      throw new StageRejection(409, `guest is ${guest.state || 'in no state'}; ${action} needs ${describe(states)}`);
    }
  }
}

function describe(states: string[]): string {
  return states.length === 1 ? states[0] : `${states.slice(0, -1).join(', ')} or ${states[states.length - 1]}`;
}

export default definePlugin({
  id: 'guard',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'Preconditions for actions (guest state checks)',
  create: GuardPlugin,
  stages: (guard) => ({ requireState: actionStage((request) => guard.requireState(request)) }),
});
