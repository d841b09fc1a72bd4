/**
 * Optional bearer-token authentication. Tokens are compared as SHA-256
 * digests with timingSafeEqual, so neither a token's content nor its length
 * leaks through response timing.
 */
import * as crypto from 'node:crypto';
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
    for (const d of digests) ok = crypto.timingSafeEqual(d, offered) || ok;
    if (!ok) {
      ctx.set('WWW-Authenticate', 'Bearer realm="hyperkern", error="invalid_token"');
      throw Errors.unauthorized('invalid bearer token');
    }
    return next();
  };
}

// One-shot hash() (Node >= 20.12) creates no Hash object per request, which
// measurably cut the CPU time of every authenticated request; createHash()
// where it is missing.
const digest: (token: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (token) => crypto.hash('sha256', token, 'buffer') as unknown as Buffer
    : (token) => crypto.createHash('sha256').update(token).digest();
