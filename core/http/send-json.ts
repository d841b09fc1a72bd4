/** Sends JSON text that is already serialized (cached guests, lists). */
import type { Context } from 'koa';

const JSON_TYPE = 'application/json; charset=utf-8';

export function sendJsonText(ctx: Context, status: number, text: string | Buffer): void {
  ctx.status = status;
  // The header itself: Koa's `ctx.type` setter looks the type up in its mime tables on every call.
  ctx.set('Content-Type', JSON_TYPE);
  ctx.body = text;
}
