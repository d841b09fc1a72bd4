/**
 * Request bodies are JSON, whatever the client labels them: `curl -d`
 * sends form encoding by default, and refusing that would only annoy. A
 * body explicitly typed as something else (XML, multipart) is refused.
 *
 * Any JSON value parses, `null` included: Go's json.Marshal(nil) is the
 * body `null`, and mistify clients send it on every action. Whether a value
 * suits the route is each route's schema's call. An empty body (with or
 * without a Content-Type, with or without chunked encoding) is no body.
 */
import type { Context, Middleware, Next } from 'koa';
import { Errors } from '../errors.js';
import { isStreamedBody } from './image-routes.js';

export function jsonBody(limit: string) {
  // koa-body (with formidable and co-body) is imported with the first body,
  // not at boot: reads never need it, and boot time is the agent's first answer.
  let loading: Promise<Middleware> | undefined;
  let loaded: Middleware | undefined;
  const parser = async (): Promise<Middleware> =>
    (loaded ??= await (loading ??= import('koa-body').then(({ HttpMethodEnum, koaBody }) =>
      koaBody({ json: true, urlencoded: false, text: false, multipart: false, jsonLimit: limit, jsonStrict: false,
        // DELETE too: a Go client sends json.Marshal(nil) there as well, and any other body must be checked, not skipped.
        parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
      }) as unknown as Middleware)));
  // Not async itself: reads carry no body and pass straight on, without an
  // async frame of their own on the hottest routes.
  return function readJson(ctx: Context, next: Next): Promise<void> {
    if (ctx.method === 'GET' || ctx.method === 'HEAD') return next();
    return readBody(ctx, next);
  };

  async function readBody(ctx: Context, next: Next): Promise<void> {
    // An image upload's body is the image, streamed to its stage unread.
    if (isStreamedBody(ctx.method, ctx.path)) return next();
    const type = ctx.get('content-type');
    if (ctx.request.length === 0 || (!ctx.request.length && !ctx.get('transfer-encoding'))) {
      ctx.request.body = undefined;
      return next();
    }
    if (!type || /^application\/x-www-form-urlencoded\b/i.test(type) || /^text\/plain\b/i.test(type)) {
      ctx.req.headers['content-type'] = 'application/json';
    } else if (!ctx.is('json', '+json')) {
      throw Errors.unsupportedMediaType(`request bodies are JSON; got Content-Type "${type}"`);
    }
    const parse = loaded ?? (await parser());
    await parse(ctx, async () => {
      // Non-strict parsing hands back "" for a body of only whitespace.
      if (ctx.request.body === '') ctx.request.body = undefined;
      await next();
    });
  }
}
