/**
 * Opens the byte stream of a fetch source: an http(s) URL or a file under
 * one of the configured source folders. Which schemes are allowed is
 * configuration; a file source outside the allowed folders is refused, so
 * the API cannot copy arbitrary host files into a guest-readable image.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Agent, interceptors, request } from 'undici';

export interface OpenedSource {
  stream: Readable;
  /** Bytes announced by the source (Content-Length, file size); undefined when unknown. */
  total?: number;
}

export interface SourcePolicy {
  allowedSchemes: readonly string[];
  /** Folders a file: source must be inside (after resolving links). */
  fileSourceDirs: readonly string[];
  /** Milliseconds without a byte from an http source before the fetch fails. */
  stallTimeoutMs: number;
}

/** A source the request names wrongly: the client's fault (400). */
export class SourceRefused extends Error {
  override readonly name = 'SourceRefused';
}

/** Parses and checks a source against the policy before anything is opened. */
export function parseSource(source: string, policy: SourcePolicy): URL {
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new SourceRefused(`source "${source}" is not a URL (e.g. https://images.example/debian.qcow2 or file:///srv/images/debian.qcow2)`);
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!policy.allowedSchemes.includes(scheme)) {
    throw new SourceRefused(`source scheme "${scheme}" is not allowed on this host; allowed: ${policy.allowedSchemes.join(', ') || 'none'} (the images plugin's allowedSchemes option)`);
  }
  if (url.username || url.password) throw new SourceRefused('source URLs must not carry credentials');
  return url;
}

// Redirects are followed (image servers often answer with one), a bounded number of times.
let agent: Agent | undefined;
function httpAgent(stallTimeoutMs: number): Agent {
  agent ??= new Agent({ bodyTimeout: stallTimeoutMs, headersTimeout: stallTimeoutMs });
  return agent;
}

export async function openSource(url: URL, policy: SourcePolicy, signal: AbortSignal): Promise<OpenedSource> {
  if (url.protocol === 'file:') return openFile(url, policy);
  const dispatcher = httpAgent(policy.stallTimeoutMs).compose(interceptors.redirect({ maxRedirections: 5 }));
  let response;
  try {
    response = await request(url, { method: 'GET', signal, dispatcher });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw new Error(`cannot reach source ${url.origin}: ${describeNetworkError(error)}`);
  }
  if (response.statusCode < 200 || response.statusCode > 299) {
    discard(response.body);
    throw new Error(`source ${url.href} answered HTTP ${response.statusCode}`);
  }
  const length = Number(response.headers['content-length']);
  return { stream: response.body, total: Number.isSafeInteger(length) && length >= 0 ? length : undefined };
}

async function openFile(url: URL, policy: SourcePolicy): Promise<OpenedSource> {
  const real = await checkFileSource(url, policy);
  const total = (await stat(real)).size;
  return { stream: createReadStream(real), total };
}

/**
 * The real path of a file: source, or a SourceRefused. One message for
 * every refusal (missing, outside the folders, through a link leading out,
 * not a regular file), so the API cannot be used to learn which host paths
 * exist; a path that is not inside a folder even as written is refused
 * without touching the file system at all.
 */
export async function checkFileSource(url: URL, policy: SourcePolicy): Promise<string> {
  const refused = new SourceRefused(
    `source ${url.href} is not a file this host serves images from: file sources must be regular files inside the folders of the images plugin's fileSourceDirs option`,
  );
  let file: string;
  try {
    file = fileURLToPath(url);
  } catch {
    throw refused;
  }
  const roots = await Promise.all(policy.fileSourceDirs.map(async (dir) => [path.resolve(dir), await realpath(dir).catch(() => path.resolve(dir))]));
  const inside = (candidate: string) => roots.some((pair) => pair.some((root) => candidate.startsWith(root + path.sep)));
  if (!inside(path.resolve(file))) throw refused;
  const real = await realpath(file).catch(() => undefined);
  if (!real || !inside(real)) throw refused;
  const info = await stat(real).catch(() => undefined);
  if (!info?.isFile()) throw refused;
  return real;
}

export function describeNetworkError(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') return 'the source closed the connection';
  if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') return 'the source stopped sending (stall timeout)';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host name not found';
  return e.message ?? String(error);
}

/**
 * Closes a source stream nobody will read. undici's body reports its own
 * destruction as an 'error' event; with no listener that would end the process.
 */
export function discard(stream: Readable): void {
  stream.on('error', () => undefined);
  stream.destroy();
}
