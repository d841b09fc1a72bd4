/**
 * `hyperkern console ID`: a terminal on the guest's serial console (GET
 * /guests/{id}/console, a WebSocket): the local terminal in raw mode, every
 * key to the guest (Ctrl-C too), its output to stdout. `Ctrl-]` then `q`
 * detaches (`Ctrl-]` twice sends one); a line on stderr says so when it
 * connects. The terminal is put back on every way out: detach, the agent
 * closing, an error, a signal. `--log` prints the console log and exits.
 * With stdin not a terminal, its bytes are typed and the console is left a
 * moment after stdin ends.
 */
import { Command, Option } from 'commander';
import WebSocket from 'ws';
import { AgentClient } from './agent-client.js';
import { ApiError, CliError } from './cli-error.js';
import { EXIT } from './exit-codes.js';
import { onInterrupt } from './interrupt.js';
import { resolveSettings, type Settings } from './settings.js';
import { resolveGuestId } from './short-ids.js';

/** The CLI's action wrapper (hyperkern.ts `run`). */
type Run = (fn: (...args: never[]) => Promise<number | void>) => (...args: unknown[]) => Promise<void>;

const ESCAPE = 0x1d; // Ctrl-]
const DETACH = 0x71; // q
/** Output that may still come after piped stdin ended (a command's answer). */
const LINGER_MS = 1500;

interface ConsoleFlags {
  url?: string;
  token?: string;
  log?: boolean;
  bytes?: number;
}

export function addConsoleCommand(program: Command, run: Run): void {
  program
    .command('console <id>')
    .description("a terminal on the guest's serial console (Ctrl-] then q detaches); --log prints its log")
    .option('--log', 'print the last bytes of the console log and exit')
    .addOption(new Option('--bytes <n>', 'with --log: how many bytes (default 65536, at most 1048576)').argParser((v) => Number(v)))
    .action(
      run(async (given: string, o: ConsoleFlags, cmd: Command) => {
        const settings = resolveSettings(cmd.optsWithGlobals<ConsoleFlags>());
        const id = await resolveGuestId(new AgentClient(settings), given);
        if (o.log) return printLog(settings, id, o.bytes);
        return attach(settings, id);
      }),
    );
}

async function printLog(settings: Settings, id: string, bytes: number | undefined): Promise<number> {
  const query = bytes === undefined ? '' : `?bytes=${encodeURIComponent(String(bytes))}`;
  let res: Response;
  try {
    res = await fetch(`${settings.url}/guests/${encodeURIComponent(id)}/console/log${query}`, { headers: settings.token ? { authorization: `Bearer ${settings.token}` } : {} });
  } catch (error) {
    throw new CliError(`cannot reach the agent at ${settings.url}: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`);
  }
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status >= 400) throw new ApiError(res.status, parseError(body.toString('utf8')), `GET console log of ${id} failed`);
  await new Promise<void>((resolve) => process.stdout.write(body, () => resolve()));
  return EXIT.ok;
}

function parseError(text: string): ApiError['body'] {
  try {
    return JSON.parse(text) as ApiError['body'];
  } catch {
    return undefined;
  }
}

/** The terminal in raw mode until `restore` (idempotent) runs. */
function rawTerminal(): () => void {
  const stdin = process.stdin;
  if (!stdin.isTTY) return () => undefined;
  stdin.setRawMode(true);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    stdin.setRawMode(false);
  };
  // Whatever ends the process (a signal, an exit elsewhere): the terminal comes back first.
  const forget = onInterrupt(restore);
  process.once('exit', restore);
  return () => {
    restore();
    forget();
    process.off('exit', restore);
  };
}

function attach(settings: Settings, id: string): Promise<number> {
  const url = `${settings.url.replace(/^http/, 'ws')}/guests/${encodeURIComponent(id)}/console`;
  const ws = new WebSocket(url, { headers: settings.token ? { authorization: `Bearer ${settings.token}` } : {} });
  const interactive = process.stdin.isTTY === true;
  return new Promise<number>((resolve, reject) => {
    let restore: () => void = () => undefined;
    let detached = false;
    let armed = false;
    const finish = (outcome: () => void) => {
      restore();
      process.stdin.off('data', onInput);
      process.stdin.pause();
      outcome();
    };
    const send = (bytes: Buffer) => {
      if (bytes.length > 0 && ws.readyState === WebSocket.OPEN) ws.send(bytes);
    };
    const onInput = (chunk: Buffer) => {
      if (!interactive) return send(chunk);
      // Ctrl-] q detaches; Ctrl-] Ctrl-] sends one Ctrl-]; Ctrl-] and any other key send both.
      const typed: number[] = [];
      for (const byte of chunk) {
        if (armed) {
          armed = false;
          if (byte === DETACH) {
            send(Buffer.from(typed));
            detached = true;
            ws.close(1000, 'detached');
            return;
          }
          if (byte !== ESCAPE) typed.push(ESCAPE);
          typed.push(byte);
        } else if (byte === ESCAPE) {
          armed = true;
        } else {
          typed.push(byte);
        }
      }
      send(Buffer.from(typed));
    };
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => finish(() => reject(new ApiError(res.statusCode ?? 0, parseError(text), `the console of ${id} refused`))));
    });
    ws.on('error', (error: NodeJS.ErrnoException) =>
      finish(() => reject(new CliError(`cannot reach the console of ${id} at ${settings.url}: ${error.code ?? error.message}`))),
    );
    ws.on('open', () => {
      restore = rawTerminal();
      process.stderr.write(`hyperkern: console of guest ${id}${interactive ? '; Ctrl-] then q detaches' : ''}\r\n`);
      process.stdin.on('data', onInput);
      process.stdin.resume();
      if (!interactive) process.stdin.once('end', () => setTimeout(() => ws.close(1000, 'input ended'), LINGER_MS));
    });
    ws.on('message', (data: Buffer) => process.stdout.write(data));
    ws.on('close', (code: number, reason: Buffer) =>
      finish(() => {
        if (detached || code === 1000) {
          process.stderr.write(`\r\nhyperkern: detached from the console of guest ${id}\r\n`);
          return resolve(EXIT.ok);
        }
        process.stderr.write(`\r\nhyperkern: the agent closed the console of guest ${id}: ${reason.toString() || `code ${code}`}\r\n`);
        resolve(EXIT.failed);
      }),
    );
  });
}
