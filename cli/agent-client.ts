/** The agent's REST API over fetch, as the CLI uses it. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
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

  /** PUT a file as the body, streamed from disk. */
  async upload<T>(urlPath: string, file: string): Promise<T> {
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    const body = Readable.toWeb(createReadStream(file)) as ReadableStream;
    return (await this.request<T>('PUT', urlPath, body, undefined, { 'content-type': 'application/octet-stream', 'content-length': String(size) })).body;
  }

  async request<T = unknown>(method: string, urlPath: string, body?: unknown, signal?: AbortSignal, extraHeaders: Record<string, string> = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
    if (this.settings.token) headers.authorization = `Bearer ${this.settings.token}`;
    const raw = body instanceof ReadableStream;
    if (body !== undefined && !raw) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      const init: RequestInit & { duplex?: 'half' } = { method, headers, body: body === undefined ? undefined : raw ? body : JSON.stringify(body), signal };
      if (raw) init.duplex = 'half';
      res = await fetch(this.settings.url + urlPath, init);
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
