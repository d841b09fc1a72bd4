/** Sends JSON text that is already serialized (cached guests, lists). */
import type { Context } from 'koa';

export function sendJsonText(ctx: Context, status: number, text: string | Buffer): void {
  ctx.status = status;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = text;
}
