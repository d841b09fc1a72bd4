/** The agent's REST API over fetch, as the CLI uses it. */
import type { Guest, Job } from '../core/contract/wire-types.js';
import { ApiError, CliError } from './cli-error.js';
import type { Settings } from './settings.js';

export interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

export class AgentClient {
  constructor(readonly settings: Settings) {}

  async request<T = unknown>(method: string, urlPath: string, body?: unknown, signal?: AbortSignal): Promise<Answer<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.settings.token) headers.authorization = `Bearer ${this.settings.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.settings.url + urlPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the agent at ${this.settings.url}: ${cause?.code ?? cause?.message ?? (error as Error).message} (set --url or HYPERKERN_URL)`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.status >= 400 && !(res.status === 500 && isJobFailure(parsed))) {
      throw new ApiError(res.status, parsed as ApiError['body'], `${method} ${urlPath} failed`);
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  async get<T>(urlPath: string): Promise<T> {
    return (await this.request<T>('GET', urlPath)).body;
  }

  job(id: string): Promise<Job> {
    return this.get<Job>(`/jobs/${encodeURIComponent(id)}`);
  }

  guest(id: string): Promise<Guest> {
    return this.get<Guest>(`/guests/${encodeURIComponent(id)}`);
  }
}

/** A ?wait answer for a job that failed carries the job; the caller reports it. */
function isJobFailure(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (body as { error?: string }).error === 'HK_ERR_JOB_FAILED';
}
