/**
 * Request bodies are JSON, whatever the client labels them: `curl -d`
 * sends form encoding by default, and refusing that would only annoy. A
 * body explicitly typed as something else (XML, multipart) is refused.
 */
import type { Context, Next } from 'koa';
import { koaBody } from 'koa-body';
import { HyperkernError } from '../errors.js';

export function jsonBody(limit: string) {
  const parse = koaBody({ json: true, urlencoded: false, text: false, multipart: false, jsonLimit: limit, jsonStrict: true });
  return async function readJson(ctx: Context, next: Next): Promise<void> {
    // Reads carry no body: skip the header checks on the hottest routes.
    if (ctx.method === 'GET' || ctx.method === 'HEAD') return next();
    const type = ctx.get('content-type');
    if (ctx.request.length === 0 || (!ctx.request.length && !ctx.get('transfer-encoding'))) {
      ctx.request.body = undefined;
      return next();
    }
    if (!type || /^application\/x-www-form-urlencoded\b/i.test(type) || /^text\/plain\b/i.test(type)) {
      ctx.req.headers['content-type'] = 'application/json';
    } else if (!ctx.is('json', '+json')) {
      throw new HyperkernError('HK_ERR_UNSUPPORTED_MEDIA_TYPE', 415, `request bodies are JSON; got Content-Type "${type}"`);
    }
    return parse(ctx, next);
  };
}
