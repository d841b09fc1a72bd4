/**
 * Where a guest's VNC server listens, for GET /guests/{id}/vnc: the config's
 * one `vnc` stage answers it, inside the request (never queued: opening a
 * screen must not wait behind a long shutdown). The route then connects to
 * it and carries the stream; this only decides whether there is one.
 */
import { Errors } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import { asPluginLogger, type AgentLogger } from '../logger.js';
import { runStage } from '../plugins/stage-runner.js';
import type { VncEndpoint, VncRequest } from '../contract/plugin-api.js';
import type { ActionPlans } from './action-plan.js';

/** A guest has a screen while its machine exists: running, or paused (suspended). */
const DISPLAY_STATES: readonly string[] = ['running', 'suspended'];

export class VncLocator {
  constructor(
    private readonly registry: GuestRegistry,
    private readonly plans: Pick<ActionPlans, 'vnc'>,
    private readonly log: AgentLogger,
  ) {}

  /** 404 unknown guest, 501 no vnc stage configured, 409 not running or no display; else where to connect. */
  async locate(guestId: string): Promise<VncEndpoint> {
    const guest = this.registry.find(guestId);
    if (!guest) throw Errors.guestNotFound(guestId);
    const stage = this.plans.vnc;
    if (!stage) throw Errors.actionNotConfigured('this agent\'s config maps no stage to "vnc"; add actions.vnc.stages (e.g. ["qemu.vnc"]) to the config');
    if (!DISPLAY_STATES.includes(guest.state)) {
      throw Errors.conflict(`guest ${guestId} is ${guest.state}; its screen exists while it is running or suspended`);
    }
    const request: VncRequest = { guest, args: { ...stage.args } };
    const endpoint = await runStage<VncEndpoint | undefined>(stage, request, { log: asPluginLogger(this.log) });
    if (!endpoint) throw Errors.conflict(`guest ${guestId} has no VNC display (the backend's "vnc" option is off, or was when the guest started)`);
    return endpoint;
  }
}
