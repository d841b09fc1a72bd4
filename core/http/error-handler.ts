/**
 * The HTTP edge of the error catalogue: every error becomes JSON
 * `{ message, code, error }` (code = HTTP status, as mistify clients expect;
 * error = the stable HK_ERR_* name). Client errors say what to fix; faults
 * are logged with their stack and answered without it.
 */
import type { Context } from 'koa';
import { ERROR_CATALOGUE, HyperkernError } from '../errors.js';
import type { AgentLogger } from '../logger.js';

/** Answers `error` on `ctx` (called by the edge for whatever a request threw). */
export function answerError(ctx: Context, error: unknown, log: AgentLogger): void {
  const { status, body } = toResponse(error);
  if (status >= 500) {
    log.error({ reqId: ctx.state.reqId, err: error, method: ctx.method, url: ctx.url }, 'request failed');
  }
  ctx.status = status;
  ctx.body = body;
  if (error instanceof HyperkernError && error.status === 405 && error.details?.allow) {
    ctx.set('Allow', String(error.details.allow));
  }
}

function toResponse(error: unknown): { status: number; body: Record<string, unknown> } {
  if (error instanceof HyperkernError) {
    const body: Record<string, unknown> = { message: error.message, code: error.status, error: error.code };
    if (error.details && error.status !== 405) Object.assign(body, error.details);
    return { status: error.status, body };
  }
  // Errors from Koa or its body parser carry an HTTP status and are client errors.
  const e = error as { status?: number; statusCode?: number; expose?: boolean; message?: string; type?: string };
  const status = e.status ?? e.statusCode;
  if (status && status >= 400 && status < 500) {
    const kind = status === 413 ? 'payloadTooLarge' : status === 415 ? 'unsupportedMediaType' : 'badRequest';
    return { status, body: { message: clientMessage(status, e), code: status, error: ERROR_CATALOGUE[kind].code } };
  }
  return {
    status: 500,
    body: { message: 'internal error in the agent; it has been logged with the request id. Retry, and report it if it persists.', code: 500, error: ERROR_CATALOGUE.internal.code },
  };
}

function clientMessage(status: number, e: { message?: string; type?: string }): string {
  if (status === 413) return 'request body too large; the limit is set by "bodyLimit" in the config';
  if (status === 415) return 'unsupported body encoding; send JSON (Content-Type: application/json)';
  if (status === 400 && /JSON|Unexpected|token/i.test(e.message ?? '')) return `malformed JSON body: ${e.message}`;
  return e.message ?? 'bad request';
}
