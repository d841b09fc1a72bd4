/** `hyperkern events`: GET /events read with eventsource-parser, one line per event. */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { AgentClient } from './agent-client.js';
import { ApiError, CliError } from './cli-error.js';
import type { Guest, Job } from '../core/contract/wire-types.js';

export async function followEvents(api: AgentClient, urlPath: string, options: { json: boolean; count?: number }): Promise<void> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (api.settings.token) headers.authorization = `Bearer ${api.settings.token}`;
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  let res: Response;
  try {
    res = await fetch(api.settings.url + urlPath, { headers, signal: abort.signal });
  } catch (error) {
    throw new CliError(`cannot reach the agent at ${api.settings.url}: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`);
  }
  if (res.status !== 200) {
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    throw new ApiError(res.status, body, `GET ${urlPath} failed`);
  }
  let seen = 0;
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      // One chunk can hold many events: none is printed past --count.
      if (options.count !== undefined && seen >= options.count) return;
      if (options.json) process.stdout.write(`${message.data}\n`);
      else process.stdout.write(`${describe(message)}\n`);
      seen += 1;
      if (options.count !== undefined && seen >= options.count) abort.abort();
    },
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
  } catch (error) {
    if (!abort.signal.aborted) throw new CliError(`the event stream broke: ${(error as Error).message}`);
  }
}

function describe(message: EventSourceMessage): string {
  let event: { id?: number; time?: string; type?: string; guest?: string; data?: { job?: Job; guest?: Guest } & Record<string, unknown> } = {};
  try {
    event = JSON.parse(message.data);
  } catch {
    return `${message.event ?? 'message'} ${message.data}`;
  }
  const job = event.data?.job;
  const guest = event.data?.guest;
  const what = job ? `${job.Action} ${job.Status}${job.Message ? `: ${job.Message}` : ''}` : guest ? `state ${guest.state}` : event.data ? JSON.stringify(event.data) : '';
  return [message.id ?? event.id ?? '-', event.time ?? '-', message.event ?? event.type ?? 'message', event.guest ?? '-', what].join('  ');
}
