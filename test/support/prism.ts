/**
 * Prism (@stoplight/prism-cli, a devDependency) as a validating proxy in
 * front of an agent, on loopback: `prism proxy --errors` checks every
 * request and every response against the OpenAPI document the agent serves,
 * and answers a violation with an error of its own (422 for a request, 500
 * for a response) instead of forwarding, so a client that gets its expected
 * answers through it sent and received only what the document says.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { once } from 'node:events';

const prismCli = createRequire(import.meta.url).resolve('@stoplight/prism-cli/dist/index.js');

export interface PrismProxy {
  url: string;
  /** Everything Prism logged (its violation reports name the rule and the field). */
  logs: string[];
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 right now (Prism needs a number; it is taken again within milliseconds). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts `prism proxy DOCUMENT UPSTREAM --errors` and resolves once it listens. */
export async function startPrismProxy(documentUrl: string, upstream: string, timeoutMs = 120_000): Promise<PrismProxy> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [prismCli, 'proxy', documentUrl, upstream, '--errors', '--host', '127.0.0.1', '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  const logs: string[] = [];
  const exited = once(child, 'exit');
  let listening: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      logs.push(...chunk.split('\n').filter((l) => l.trim() !== ''));
      if (/Prism is listening/.test(chunk)) listening();
    });
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      exited.then(() => {
        throw new Error(`prism exited before listening: ${logs.slice(-20).join('\n')}`);
      }),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`prism did not listen within ${timeoutMs} ms: ${logs.slice(-20).join('\n')}`)), timeoutMs))),
    ]);
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { url: `http://127.0.0.1:${port}`, logs, stop };
}
