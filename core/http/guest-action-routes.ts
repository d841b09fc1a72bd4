/**
 * A guest's lifecycle actions (POST /guests/{id}/start...) and its delete
 * (DELETE /guests/{id}, and mistify's POST alias): each queues a job on the
 * guest. They take their options from the query; the body is ignored but
 * checked (checkActionBody): none, `null` (what Go clients send) or an object.
 */
import { z } from 'zod';
import { describeAllowedStates, type LifecycleAction } from '../contract/lifecycle.js';
import { actionParams, checkActionBody } from './action-params.js';
import { answerGuestJob } from './guest-answer.js';
import type { GuestRouteDeps } from './guest-routes.js';
import { defineRoute, type HttpMethod, type ResponseDoc, type RouteDeclaration, type RouteHandler } from './route.js';
import { ACTION_BODY, err, JOB_FAULTS, waitQuery } from './openapi/common-docs.js';
import { GuestSchema } from './openapi/wire-schemas.js';

/** A 409's text from the kernel's lifecycle table, the states it enforces. */
const unless = (action: LifecycleAction): string => `Unless the guest is ${describeAllowedStates(action)} (the lifecycle table; a config's guard.requireState args.states replace them)`;

/** Answers of every queued action (start, delete...). */
const actionResponses = (conflict: string): Record<number, ResponseDoc> => ({
  200: { description: 'With ?wait: the job completed; the guest as the job left it', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  202: { description: 'Queued (or, with ?wait, still running at the deadline: see X-Guest-Job-Status)', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  400: err('A bad wait or timeout parameter, or a body that is not null or an object'),
  404: err('No such guest'),
  409: err(conflict),
  ...JOB_FAULTS,
});

/** Runs `action` on the guest of the path: the body checked, the query read, the job answered. */
const perform =
  (action: LifecycleAction) =>
  (deps: GuestRouteDeps): RouteHandler =>
  async (ctx) => {
    checkActionBody(ctx.request.body);
    const { waitMs, args } = actionParams(ctx, deps.maxWaitSeconds);
    await answerGuestJob(ctx, deps, await deps.runner.perform(action, ctx.params.id, args), waitMs);
  };

const POWER: { action: LifecycleAction; summary: string; query?: z.ZodObject }[] = [
  { action: 'start', summary: 'Start the guest' },
  { action: 'shutdown', summary: 'Shut the guest down (ACPI power button)',
    query: waitQuery.extend({
      timeout: z.string().optional().meta({ description: 'Seconds the guest OS gets to power off (1 to 86400)', example: '60' }),
      force: z.string().optional().meta({ description: 'true: when the guest has not shut down by then, power it off in the same job (its Message starts "forced:")', example: 'true' }),
    }),
  },
  { action: 'reboot', summary: 'Reboot the guest (soft, by the guest OS)' },
  { action: 'restart', summary: 'Reset the guest (hard)' },
  { action: 'poweroff', summary: 'Power the guest off (pull the plug)' },
  { action: 'suspend', summary: "Pause the guest's vCPUs" },
  { action: 'resume', summary: "Resume a suspended guest's vCPUs" },
];

const powerRoutes = POWER.map((p) =>
  defineRoute({
    method: 'post',
    path: `/guests/:id/${p.action}`,
    operationId: `${p.action}Guest`,
    tag: 'actions',
    summary: p.summary,
    description: "No body (or null, or {}): Go clients send null. Other query parameters are passed to the action's stages as string args.",
    request: { query: p.query ?? waitQuery, body: ACTION_BODY },
    responses: actionResponses(unless(p.action)),
    handle: perform(p.action),
  }),
);

const deleteRoute = (method: HttpMethod, path: string, operationId: string, summary: string): RouteDeclaration<GuestRouteDeps> =>
  defineRoute({
    method,
    path,
    operationId,
    tag: 'guests',
    summary,
    description: 'Queues the delete job; the guest leaves the registry when it succeeds (a failed one leaves it, the error in the job). No body (or null, or {}).',
    request: { query: waitQuery, body: ACTION_BODY },
    responses: actionResponses(unless('delete')),
    handle: perform('delete'),
  });

export const GUEST_ACTION_ROUTES = [
  ...powerRoutes,
  deleteRoute('delete', '/guests/:id', 'deleteGuest', 'Delete a guest'),
  // mistify-agent's alias, for clients that cannot send DELETE.
  deleteRoute('post', '/guests/:id/delete', 'deleteGuestAlias', "Delete a guest (mistify's alias of DELETE)"),
];
