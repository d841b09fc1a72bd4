/**
 * What the CLI prints on failure: one line, the agent's own message when it
 * answered, never a stack. `exitCode` follows EXIT in exit-codes.ts.
 */
import { EXIT } from './exit-codes.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The agent answered with an error: its `{message, code, error}`. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly body: { message?: string; error?: string; [key: string]: unknown } | undefined,
    fallback: string,
  ) {
    super(body?.message ? `${body.message} (HTTP ${status}${body.error ? ` ${body.error}` : ''})` : `${fallback} (HTTP ${status})`);
    this.name = 'ApiError';
  }
}
