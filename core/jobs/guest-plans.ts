/**
 * Which plans a guest runs, and which states its lifecycle actions may
 * start from. The kernel enforces the contract's lifecycle table for every
 * action, when the request arrives (409, nothing queued) and again when the
 * job starts (earlier jobs of the guest ran since: the job ends Error). A
 * config overrides the table for one action only explicitly: a
 * `guard.requireState` stage in that action's sync stages with
 * `args.states` replaces the table's states for it, to narrow or widen them.
 */
import { GUEST_TYPE_PREFIXES, VM_GUEST_TYPES, prefixedGuestType } from './actions.js';
import type { ActionPlans, LifecyclePlan, PlanSet } from './action-plan.js';
import { Errors } from '../errors.js';
import { LIFECYCLE, describeStates } from '../contract/lifecycle.js';
import type { Guest } from '../contract/wire-types.js';

/** The stage whose `args.states` overrides the table (README, docs/design.md). */
export const STATE_OVERRIDE_STAGE = 'guard.requireState';

/** As in mistify: a guest's type picks its plans ("container" runs containerStart...); an unknown type is a 400. */
export function plansFor(plans: ActionPlans, guest: Guest): PlanSet {
  const prefixed = prefixedGuestType(guest.type);
  if (prefixed) return plans.byType[prefixed];
  if (!VM_GUEST_TYPES.includes(guest.type)) {
    const known = [...VM_GUEST_TYPES.map((t) => `"${t}"`), ...Object.keys(GUEST_TYPE_PREFIXES).map((t) => `"${t}"`)];
    throw Errors.badRequest(`type: "${guest.type}" is not a guest type this agent runs; use ${known.join(', ')} ("", "vm" and "kvm" are virtual machines)`);
  }
  return plans;
}

/**
 * The states `plan`'s action may start from: the `args.states` of a
 * guard.requireState sync stage if the config gives one (the last such
 * stage wins, as it would be the last to refuse), else the table's.
 */
export function allowedStatesOf(plan: LifecyclePlan): readonly string[] {
  let states: readonly string[] = LIFECYCLE[plan.action].from;
  for (const stage of plan.sync) {
    const override = stage.args.states;
    if (stage.handle.name === STATE_OVERRIDE_STAGE && Array.isArray(override) && override.length > 0 && override.every((s) => typeof s === 'string')) {
      states = override;
    }
  }
  return states;
}

/** The lifecycle check: a 409 naming the guest's state and what the action needs. Create (no `from` states) is never refused here. */
export function checkLifecycleState(plan: LifecyclePlan, guest: Guest): void {
  if (plan.action === 'create') return;
  const states = allowedStatesOf(plan);
  if (!states.includes(guest.state)) {
    throw Errors.conflict(`guest is ${guest.state || 'in no state'}; ${plan.action} needs ${describeStates(states)}`);
  }
}
