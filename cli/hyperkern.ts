#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node
/**
 * `hyperkern`: the operator's command line. `hyperkern serve` runs the
 * agent; every other command is a client of an agent's REST API
 * (--url/HYPERKERN_URL, --token/HYPERKERN_TOKEN, or the CLI config file).
 * Tables for people, --json for scripts; errors are the agent's message on
 * one line, never a stack. Exit codes: cli/exit-codes.ts, docs/cli.md.
 */
import { Argument, Command, CommanderError, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import type { Guest, GuestCpuMetrics, GuestDiskMetrics, GuestNicMetrics, Image, Job } from '../core/contract/wire-types.js';
import { CliError } from './cli-error.js';
import { EXIT } from './exit-codes.js';
import { followEvents } from './event-follow.js';
import { endOnSignals } from './interrupt.js';
import { addConsoleCommand } from './console.js';
import { addFleetCommands } from './fleet.js';
import { addMigrateCommand } from './migrate.js';
import { client, collect, enc, json, keyValues, number, out, query, queued, waitOptions, type WaitFlags } from './command-kit.js';
import { resolveGuestId, resolveGuestIds, resolveJobId } from './short-ids.js';
import { details, table } from './tables.js';

/** `hyperkern guests create`'s flags, as commander parses them. */
interface CreateFlags extends WaitFlags {
  file?: string;
  id?: string;
  memory?: string;
  cpu?: string;
  disk?: string[];
  nic?: string[];
  image?: string;
  type?: string;
  metadata?: string[];
  /** False with --no-start. */
  start: boolean;
}

/** One guest's metrics as GET …/metrics/{cpu,nic,disk} answer them. */
interface AllMetrics {
  cpu?: GuestCpuMetrics[];
  nic?: Record<string, GuestNicMetrics>;
  disk?: Record<string, GuestDiskMetrics>;
}

const ACTIONS: [string, string][] = [
  ['start', 'start a guest'],
  ['shutdown', 'shut a guest down (ACPI power button)'],
  ['reboot', 'reboot a guest (soft, by the guest OS)'],
  ['restart', 'reset a guest (hard)'],
  ['poweroff', 'power a guest off (pull the plug)'],
  ['suspend', "pause a guest's vCPUs"],
  ['resume', 'resume a suspended guest'],
];

function guestRows(guests: Guest[]): string {
  return table(
    ['ID', 'STATE', 'CPU', 'MEMORY', 'DISKS', 'NICS', 'TYPE'],
    guests.map((g) => [g.id, g.state, g.cpu, `${g.memory} MiB`, (g.disks ?? []).map((d) => `${d.device}:${d.size}M`).join(',') || '-', (g.nics ?? []).map((n) => n.name).join(',') || '-', g.type || 'vm']),
  );
}

function jobRows(jobs: Job[]): string {
  return table(['ID', 'GUEST', 'ACTION', 'STATUS', 'UPDATED', 'MESSAGE'], jobs.map((j) => [j.ID, j.GuestID, j.Action, j.Status, j.UpdatedAt, j.Message]));
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('hyperkern')
    .description('hyperkern: the node agent of a hypervisor host (serve) and its command line client')
    .option('--url <url>', 'the agent (env HYPERKERN_URL; default http://127.0.0.1:8080)')
    .option('--token <token>', 'bearer token (env HYPERKERN_TOKEN)')
    .option('--json', 'print JSON for scripts instead of tables')
    .showHelpAfterError()
    .exitOverride();
  // Every client command (not `serve`: the agent stops gracefully itself) ends on a stop signal.
  // Commander calls an action with its arguments, options and command; each action names their types.
  const run = (fn: (...args: never[]) => Promise<number | void>) => async (...args: unknown[]) => {
    endOnSignals();
    setExit((await fn(...(args as never[]))) ?? EXIT.ok);
  };

  program
    .command('serve')
    .description('run the agent (config /etc/hyperkern/agent.json unless --config or HYPERKERN_CONFIG; see hyperkern serve --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[flags...]', 'the agent flags: --config FILE --listen HOST:PORT --data-dir DIR --check --help')
    .action(async (agentFlags: string[]) => {
      const { serve } = await import('./serve.js');
      await serve(agentFlags);
    });

  const guests = program.command('guests').description('list, show, create and delete guests');
  guests
    .command('ls')
    .description('list the guests')
    .action(
      run(async (_o, cmd: Command) => {
        const { api, flags } = client(cmd);
        const list = await api.get<Guest[]>('/guests');
        flags.json ? json(list) : out(list.length ? guestRows(list) : 'no guests\n');
      }),
    );
  guests
    .command('get <id>')
    .description('show one guest')
    .action(
      run(async (id: string, _o, cmd: Command) => {
        const { api, flags } = client(cmd);
        const g = await api.guest(await resolveGuestId(api, id));
        if (flags.json) return json(g);
        out(details([['id', g.id], ['state', g.state], ['type', g.type || 'vm'], ['cpu', g.cpu], ['memory', `${g.memory} MiB`], ['image', g.image || '-'], ['vnc', g.vnc || '-'], ['metadata', g.metadata ?? {}]]));
        if (g.disks?.length) out(`\n${table(['DISK', 'BUS', 'SIZE', 'IMAGE', 'VOLUME'], g.disks.map((d) => [d.device, d.bus, `${d.size} MiB`, d.image || '-', d.volume || '-']))}`);
        if (g.nics?.length) out(`\n${table(['NIC', 'MAC', 'NETWORK', 'MODEL', 'DEVICE'], g.nics.map((n) => [n.name, n.mac, n.network || '-', n.model, n.device]))}`);
      }),
    );
  waitOptions(
    guests
      .command('create')
      .description('create a guest (flags, or a JSON body with --file)')
      .option('--file <path>', 'the POST /guests body as JSON ("-" = stdin); flags below override its fields')
      .option('--id <uuid>', 'a new UUID of your choosing: retries of the same create are idempotent')
      .option('-m, --memory <MiB>', 'memory in MiB')
      .option('-c, --cpu <n>', 'vCPUs')
      .option('-d, --disk <MiB|image:NAME>', 'a disk: a size in MiB, or image:NAME to copy an image (repeatable)', collect)
      .option('-n, --nic <network>', 'a NIC on this network ("" = the default; repeatable)', collect)
      .option('--image <name>', 'the image of the guest')
      .option('--type <type>', 'guest type ("" = a virtual machine)')
      .option('--metadata <key=value>', 'a metadata entry (repeatable)', collect)
      .option('--no-start', 'leave the guest off (by default the create job ends by starting it)')
      .option('-q, --quiet', "print only the new guest's id (with --wait once the job ended; the exit code says how): ID=$(hyperkern guests create -q …)"),
  ).action(
    run(async (o: CreateFlags, cmd: Command) => {
      const { api, flags } = client(cmd);
      const body: Record<string, unknown> = o.file ? JSON.parse(o.file === '-' ? await readStdin() : await readFile(o.file, 'utf8')) : {};
      if (o.id) body.id = o.id;
      if (o.memory) body.memory = number(o.memory, '--memory');
      if (o.cpu) body.cpu = number(o.cpu, '--cpu');
      if (o.disk) body.disks = o.disk.map((d) => (d.startsWith('image:') ? { image: d.slice(6) } : { size: number(d, '--disk') }));
      if (o.nic) body.nics = o.nic.map((network) => ({ network }));
      if (o.image) body.image = o.image;
      if (o.type !== undefined) body.type = o.type;
      if (o.metadata) body.metadata = keyValues(o.metadata, '--metadata');
      const args = keyValues(o.arg, '--arg');
      if (o.start === false) args.start = 'false';
      const answer = await api.request<Guest>('POST', `/guests${query(args)}`, body);
      return queued(api, { ...flags, ...o }, answer, 'create');
    }),
  );
  waitOptions(guests.command('rm <id>').alias('delete').description('delete a guest')).action(
    run(async (id: string, o: WaitFlags, cmd: Command) => {
      const { api, flags } = client(cmd);
      const answer = await api.request<Guest>('DELETE', `/guests/${enc(await resolveGuestId(api, id))}${query(keyValues(o.arg, '--arg'))}`);
      return queued(api, { ...flags, ...o }, answer, 'delete');
    }),
  );

  for (const [action, description] of ACTIONS) {
    waitOptions(program.command(`${action} <id>`).description(description)).action(
      run(async (id: string, o: WaitFlags, cmd: Command) => {
        const { api, flags } = client(cmd);
        const answer = await api.request<Guest>('POST', `/guests/${enc(await resolveGuestId(api, id))}/${action}${query(keyValues(o.arg, '--arg'))}`);
        return queued(api, { ...flags, ...o }, answer, action);
      }),
    );
  }

  program
    .command('metrics <id>')
    .addArgument(new Argument('[type]', 'cpu, nic or disk (default: all three)').choices(['cpu', 'nic', 'disk']))
    .description("a guest's counters from its backend")
    .action(
      run(async (id: string, type: string | undefined, _o, cmd: Command) => {
        const { api, flags } = client(cmd);
        const types = type ? [type] : ['cpu', 'nic', 'disk'];
        id = await resolveGuestId(api, id);
        const all: AllMetrics = {};
        for (const t of types) Object.assign(all, { [t]: await api.get<unknown>(`/guests/${enc(id)}/metrics/${t}`) });
        if (flags.json) return json(type ? all[type as keyof AllMetrics] : all);
        const parts: string[] = [];
        if (all.cpu) parts.push(table(['VCPU', 'CPU_TIME', 'VCPU_TIME'], all.cpu.map((c, i) => [i, c.cpu_time, c.vcpu_time])));
        if (all.nic) parts.push(table(['NIC', 'RX_BYTES', 'RX_PACKETS', 'TX_BYTES', 'TX_PACKETS', 'ERRORS', 'DROPS'], Object.entries(all.nic).map(([n, m]) => [n, m.rx_bytes, m.rx_packets, m.tx_bytes, m.tx_packets, m.rx_errors + m.tx_errors, m.rx_drops + m.tx_drops])));
        if (all.disk) parts.push(table(['DISK', 'READ_BYTES', 'READ_OPS', 'WRITE_BYTES', 'WRITE_OPS', 'FLUSH_OPS'], Object.entries(all.disk).map(([d, m]) => [d, m.read_bytes, m.read_ops, m.write_bytes, m.write_ops, m.flush_ops])));
        out(parts.join('\n'));
      }),
    );

  const jobs = program.command('jobs').description('the job log');
  jobs
    .command('ls')
    .description('the newest jobs first')
    .option('--guest <id>', "only this guest's jobs")
    .option('--limit <n>', 'how many', '20')
    .action(
      run(async (o: { guest?: string; limit: string }, cmd: Command) => {
        const { api, flags } = client(cmd);
        const list = o.guest ? (await api.get<Job[]>(`/guests/${enc(await resolveGuestId(api, o.guest))}/jobs`)).slice(0, number(o.limit, '--limit')) : await api.get<Job[]>(`/jobs?limit=${enc(o.limit)}`);
        flags.json ? json(list) : out(list.length ? jobRows(list) : 'no jobs\n');
      }),
    );
  jobs
    .command('get <id>')
    .description('show one job')
    .action(
      run(async (id: string, _o, cmd: Command) => {
        const { api, flags } = client(cmd);
        const j = await api.job(await resolveJobId(api, id));
        flags.json ? json(j) : out(details(Object.entries(j)));
        return j.Status === 'Error' ? EXIT.failed : EXIT.ok;
      }),
    );
  jobs
    .command('cancel <id>')
    .description('cancel a queued or running job')
    .action(
      run(async (id: string, _o, cmd: Command) => {
        const { api, flags } = client(cmd);
        const jobId = await resolveJobId(api, id);
        const answer = await api.request<Job>('DELETE', `/jobs/${enc(jobId)}`);
        flags.json ? json(answer.body) : out(`job ${jobId}: ${answer.body?.Status ?? 'cancel requested'}${answer.body?.Message ? ` (${answer.body.Message})` : ''}\n`);
      }),
    );

  const images = program.command('images').description('guest disk images on this host');
  images
    .command('ls')
    .description('list the images')
    .action(
      run(async (_o, cmd: Command) => {
        const { api, flags } = client(cmd);
        const list = await api.get<Image[]>('/images');
        flags.json ? json(list) : out(list.length ? table(['ID', 'STATUS', 'SIZE', 'TYPE', 'VOLUME'], list.map((i) => [i.id, i.status, `${i.size} MiB`, i.type, i.volume])) : 'no images\n');
      }),
    );
  images
    .command('get <id>')
    .description('show one image')
    .action(
      run(async (id: string, _o, cmd: Command) => {
        const { api, flags } = client(cmd);
        const image = await api.get<Image>(`/images/${enc(id)}`);
        flags.json ? json(image) : out(details(Object.entries(image)));
      }),
    );
  waitOptions(
    images
      .command('fetch <id>')
      .description('fetch an image from a URL (a job; --wait shows a progress bar)')
      .requiredOption('--source <url>', 'http(s) or file URL of a raw or qcow2 image')
      .option('--sha256 <hex>', 'the sha256 the image must have'),
  ).action(
    run(async (id: string, o: WaitFlags & { source: string; sha256?: string }, cmd: Command) => {
      const { api, flags } = client(cmd);
      const args = keyValues(o.arg, '--arg');
      if (o.sha256) args.sha256 = o.sha256;
      const answer = await api.request<Image>('POST', `/images${query(args)}`, { id, source: o.source });
      return queued(api, { ...flags, ...o }, answer, 'fetch');
    }),
  );
  waitOptions(images.command('rm <id>').description('delete an image (a job)')).action(
    run(async (id: string, o: WaitFlags, cmd: Command) => {
      const { api, flags } = client(cmd);
      const answer = await api.request<Image>('DELETE', `/images/${enc(id)}${query(keyValues(o.arg, '--arg'))}`);
      return queued(api, { ...flags, ...o }, answer, 'delete');
    }),
  );
  images
    .command('upload <id> <file>')
    .description('upload an image file (streamed; answers when it is stored and checked)')
    .option('--sha256 <hex>', 'the sha256 the image must have')
    .action(
      run(async (id: string, file: string, o: { sha256?: string }, cmd: Command) => {
        const { api, flags } = client(cmd);
        const image = await api.upload<Image>(`/images/${enc(id)}${o.sha256 ? `?sha256=${enc(o.sha256)}` : ''}`, file);
        flags.json ? json(image) : out(`uploaded ${image.id}: ${image.size} MiB, ${image.status}\n`);
      }),
    );

  program
    .command('events')
    .description('follow the change feed (GET /events); Ctrl-C ends it')
    .option('--since <id>', 'replay every event after this id first (0 = all retained)')
    .option('--guest <id>', 'only events of this guest (comma-separated ids)')
    .option('--type <types>', 'only these types or families, e.g. guest,job.failed')
    .addOption(new Option('--count <n>', 'stop after this many events').argParser((v) => number(v, '--count')))
    .action(
      run(async (o: { since?: string; guest?: string; type?: string; count?: number }, cmd: Command) => {
        const { api, flags } = client(cmd);
        const q: Record<string, string> = {};
        if (o.since !== undefined) q.since = o.since;
        if (o.guest) q.guest = await resolveGuestIds(api, o.guest);
        if (o.type) q.type = o.type;
        await followEvents(api, `/events${query(q)}`, { json: flags.json === true, count: o.count });
      }),
    );
  addMigrateCommand(program, run);
  addFleetCommands(program, run);
  addConsoleCommand(program, run);
  return program;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(argv: string[]): Promise<void> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not errors; commander printed the message already.
      code = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    } else if (error instanceof CliError) {
      process.stderr.write(`hyperkern: ${error.message}\n`);
      code = error.exitCode;
    } else if (error instanceof SyntaxError) {
      process.stderr.write(`hyperkern: not JSON: ${error.message}\n`);
      code = EXIT.usage;
    } else {
      process.stderr.write(`hyperkern: ${(error as Error)?.message ?? error}\n`);
      code = EXIT.failed;
    }
  }
  process.exitCode = code;
}

// `serve` keeps the process alive with the agent; every other command ends here.
await main(process.argv);
