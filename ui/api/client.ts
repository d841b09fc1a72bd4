/**
 * The console's only way to the agent: JSON requests carrying the bearer
 * token, every error answer turned into an ApiError with the agent's own
 * message, uploads with progress, and WebSocket URLs opened with a console
 * ticket (a browser's WebSocket cannot send an Authorization header).
 */
import type { ErrorBody, Guest, HostCapacity, Health, Image, JobView } from './types.js';
import { loadToken, saveToken } from './token.js';

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the agent could not be reached. */
    readonly status: number,
    /** The agent's error code (HK_ERR_...), or NETWORK. */
    readonly code: string,
    message: string,
    /** The error answer's other fields (a moved guest's `movedTo`). */
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiAnswer<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** What a request needs beyond its method and path. */
export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Partial<ErrorBody>;
    if (typeof body.message === 'string') return new ApiError(res.status, body.error ?? `HTTP_${res.status}`, body.message, body as Record<string, unknown>);
  } catch {
    /* not the agent's JSON (a proxy's page): fall through */
  }
  return new ApiError(res.status, `HTTP_${res.status}`, `${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`);
}

export class ApiClient {
  private token: string | undefined = loadToken();
  private readonly unauthorized = new Set<(error: ApiError) => void>();

  constructor(private readonly base = '') {}

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  /** Sets (or clears) the token for this tab's session. */
  setToken(token: string | undefined): void {
    this.token = token;
    saveToken(token);
  }

  /** Called whenever the agent answers 401: the shell then asks for a token. */
  onUnauthorized(listener: (error: ApiError) => void): () => void {
    this.unauthorized.add(listener);
    return () => this.unauthorized.delete(listener);
  }

  authHeaders(): Record<string, string> {
    return this.token === undefined ? {} : { Authorization: `Bearer ${this.token}` };
  }

  /** A raw fetch with the token; non-2xx answers throw ApiError (401 also tells the shell). */
  async fetch(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...this.authHeaders(), ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    let res: Response;
    try {
      res = await fetch(this.base + path, { method, headers, body, signal: options.signal, cache: 'no-store' });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new ApiError(0, 'NETWORK', `the agent did not answer (${error instanceof Error ? error.message : String(error)})`);
    }
    if (!res.ok) {
      const error = await errorOf(res);
      if (res.status === 401) for (const listener of this.unauthorized) listener(error);
      throw error;
    }
    return res;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<ApiAnswer<T>> {
    const res = await this.fetch(method, path, options);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text === '' ? undefined : JSON.parse(text)) as T };
  }

  async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return (await this.request<T>('GET', path, { signal })).body;
  }

  /** An action or create: the answer and the id of the job it queued (X-Guest-Job-ID). */
  async queue<T>(method: string, path: string, body?: unknown): Promise<{ body: T; jobId: string | undefined }> {
    const answer = await this.request<T>(method, path, { body });
    return { body: answer.body, jobId: answer.headers.get('x-guest-job-id') ?? undefined };
  }

  // The routes the shell's views use; guest views may call request() for the rest.
  guests = (signal?: AbortSignal) => this.get<Guest[]>('/guests', signal);
  jobs = (limit = 200, signal?: AbortSignal) => this.get<JobView[]>(`/jobs?limit=${limit}`, signal);
  job = (id: string) => this.get<JobView>(`/jobs/${encodeURIComponent(id)}`);
  cancelJob = (id: string) => this.request<JobView>('DELETE', `/jobs/${encodeURIComponent(id)}`);
  health = () => this.get<Health>('/health');
  capacity = () => this.get<HostCapacity>('/host');
  images = (type?: string) => this.get<Image[]>(type ? `/images?type=${encodeURIComponent(type)}` : '/images');

  /**
   * PUT a file as an image, reporting upload progress (fetch cannot, so
   * XMLHttpRequest). Resolves with the stored Image.
   */
  upload(path: string, file: Blob, onProgress: (sent: number, total: number) => void, signal?: AbortSignal): Promise<Image> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', this.base + path);
      for (const [name, value] of Object.entries(this.authHeaders())) xhr.setRequestHeader(name, value);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'the upload was cut off before the agent answered'));
      xhr.onabort = () => reject(new ApiError(0, 'ABORTED', 'upload cancelled'));
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve(JSON.parse(xhr.responseText) as Image);
        const error = errorOf(new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText }));
        error.then((e) => {
          if (e.status === 401) for (const listener of this.unauthorized) listener(e);
          reject(e);
        }, reject);
      };
      signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(file);
    });
  }

  /**
   * The ws:// URL of a guest's console or screen: with a token, a
   * single-use console ticket (good for 30 s) rides in the query.
   */
  async webSocketUrl(guestId: string, kind: 'console' | 'vnc'): Promise<string> {
    const origin = new URL(this.base || window.location.origin, window.location.href);
    const scheme = origin.protocol === 'https:' ? 'wss:' : 'ws:';
    const path = `/guests/${encodeURIComponent(guestId)}/${kind}`;
    if (this.token === undefined) return `${scheme}//${origin.host}${path}`;
    const ticket = await this.request<{ ticket: string }>('POST', `/guests/${encodeURIComponent(guestId)}/console/ticket`);
    return `${scheme}//${origin.host}${path}?ticket=${encodeURIComponent(ticket.body.ticket)}`;
  }
}
