/**
 * Optional bearer-token authentication. Tokens are compared as SHA-256
 * digests with timingSafeEqual, so neither a token's content nor its length
 * leaks through response timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { Errors } from '../errors.js';

export function bearerAuth(tokens: string[], openPaths: Set<string>) {
  const digests = tokens.map(digest);
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    if (digests.length === 0 || openPaths.has(ctx.path)) return next();
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      ctx.set('WWW-Authenticate', 'Bearer realm="hyperkern"');
      throw Errors.unauthorized('authentication required: send "Authorization: Bearer <token>" with a token from the agent\'s config');
    }
    const offered = digest(match[1]);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, offered) || ok;
    if (!ok) {
      ctx.set('WWW-Authenticate', 'Bearer realm="hyperkern", error="invalid_token"');
      throw Errors.unauthorized('invalid bearer token');
    }
    return next();
  };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
