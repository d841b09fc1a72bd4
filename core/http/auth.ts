/**
 * Optional bearer-token authentication. The configured tokens are kept only
 * as SHA-256 digests; a request's token is hashed once and looked up. What
 * the lookup compares is a digest, so its timing can reveal at most how much
 * of some digest matched, which tells nothing about any token (SHA-256 is
 * preimage resistant) nor about a token's length.
 *
 * A keep-alive connection that passed with an Authorization header is
 * remembered with that header: its next requests carrying the very same
 * header skip the hash (hashing was the largest single cost of an
 * authenticated read). That comparison is between two strings the client
 * sent, so it reveals nothing about any token.
 */
import * as crypto from 'node:crypto';
import type { Socket } from 'node:net';
import type { Context } from 'koa';
import { Errors } from '../errors.js';

/**
 * Throws 401 unless the request may pass. Answers whether the request is
 * authenticated: true with a valid token or when no tokens are configured;
 * false only on an open path (e.g. /health, which then shows less) reached
 * without a valid token.
 */
export type BearerCheck = (ctx: Context) => boolean;

/**
 * A single-use ticket standing in for the token where a client cannot send
 * headers (a browser's WebSocket or download link; ticket-check.ts): undefined when the request carries none
 * (or its route takes none), else whether it was valid; it is used up.
 */
export type TicketCheck = (ctx: Context) => boolean | undefined;

export function bearerAuth(tokens: string[], isOpenPath: (path: string) => boolean, ticketCheck?: TicketCheck): BearerCheck {
  const digests = new Set(tokens.map(digest));
  if (digests.size === 0) return () => true;
  const passed = new WeakMap<Socket, string>();
  return function authenticate(ctx: Context): boolean {
    const header = ctx.get('authorization');
    const socket = ctx.req.socket;
    if (header !== '' && passed.get(socket) === header) return true;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    // An open path never answers 401, whatever the header: a load balancer
    // probing /health with a stale token must still see the agent alive.
    if (isOpenPath(ctx.path)) {
      if (!match || !digests.has(digest(match[1]))) return false;
      passed.set(socket, header);
      return true;
    }
    const ticket = match ? undefined : ticketCheck?.(ctx);
    if (ticket === true) return true;
    if (ticket === false) {
      ctx.set('WWW-Authenticate', 'Bearer realm="hyperkern", error="invalid_token"');
      throw Errors.unauthorized(
        'ticket unknown, already used or expired, or issued for another route (each is good once, within 30 s, for the route it was issued for: POST /guests/{id}/console/ticket or …/snapshots/{name}/download/ticket for another)',
      );
    }
    if (!match) {
      ctx.set('WWW-Authenticate', 'Bearer realm="hyperkern"');
      throw Errors.unauthorized('authentication required: send "Authorization: Bearer <token>" with a token from the agent\'s config');
    }
    if (!digests.has(digest(match[1]))) {
      ctx.set('WWW-Authenticate', 'Bearer realm="hyperkern", error="invalid_token"');
      throw Errors.unauthorized('invalid bearer token');
    }
    passed.set(socket, header);
    return true;
  };
}

// One-shot hash() (Node >= 20.12) creates no Hash object per request;
// createHash() where it is missing.
const digest: (token: string) => string =
  typeof crypto.hash === 'function'
    ? (token) => crypto.hash('sha256', token, 'base64')
    : (token) => crypto.createHash('sha256').update(token).digest('base64');
