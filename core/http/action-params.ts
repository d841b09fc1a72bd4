/**
 * Query parameters of action requests: `wait` (seconds to hold the answer
 * until the job ends) is the kernel's; every other parameter is handed to
 * the action's stages as a string in `args` (e.g. shutdown's `timeout`).
 *
 * Actions take their input from the query, not the body; mistify's client
 * posts `null` (json.Marshal(nil)) and others post `{}` or nothing, so those
 * are accepted and any object's fields are ignored, as Go's decoder would.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { Errors } from '../errors.js';

/** The body of an action POST or a DELETE: none, `null` or an object, ignored. */
export const actionBodySchema = z.union([z.null(), z.undefined(), z.looseObject({})]);

export interface ActionParams {
  waitMs: number;
  args: Record<string, string>;
}

/** Refuses an action body that is not nothing, `null` or an object. */
export function checkActionBody(body: unknown): void {
  if (!actionBodySchema.safeParse(body).success) {
    throw Errors.badRequest(`an action takes no body (or null, or {}); got ${Array.isArray(body) ? 'an array' : `a ${typeof body}`}. Action options go in the query, e.g. ?wait=10`);
  }
}

export function actionParams(ctx: Context, maxWaitSeconds: number): ActionParams {
  const args: Record<string, string> = {};
  let waitMs = 0;
  for (const [key, raw] of Object.entries(ctx.query)) {
    const value = Array.isArray(raw) ? raw[raw.length - 1] : (raw ?? '');
    if (key === 'wait') {
      const seconds = value === '' ? maxWaitSeconds : Number(value);
      if (!Number.isFinite(seconds) || seconds < 0) throw Errors.badRequest(`wait must be a number of seconds (0 to ${maxWaitSeconds}); got "${value}"`);
      waitMs = Math.min(seconds, maxWaitSeconds) * 1000;
    } else if (key === 'timeout') {
      const seconds = Number(value);
      if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 86400) throw Errors.badRequest(`timeout must be a number of seconds between 0 and 86400; got "${value}"`);
      args[key] = value;
    } else if (key === 'force') {
      if (!['', 'true', '1', 'false', '0'].includes(value)) throw Errors.badRequest(`force must be true or false; got "${value}"`);
      if (value === '' || value === 'true' || value === '1') args[key] = 'true';
    } else {
      args[key] = value;
    }
  }
  return { waitMs, args };
}

/** `?limit=N` for listings. */
export function limitParam(ctx: Context, fallback: number, max: number): number {
  const raw = ctx.query.limit;
  if (raw === undefined) return fallback;
  const value = Number(Array.isArray(raw) ? raw[0] : raw);
  if (!Number.isInteger(value) || value < 1) throw Errors.badRequest(`limit must be a whole number from 1 to ${max}; got "${raw}"`);
  return Math.min(value, max);
}
