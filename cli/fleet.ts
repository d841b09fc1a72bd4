/**
 * `hyperkern fleet hosts|guests|place`: the fleet as etcd holds it, read
 * directly (no agent is asked), through the key layout of docs/fleet.md.
 * etcd comes from --endpoints / HYPERKERN_ETCD_ENDPOINTS (comma-separated)
 * and --prefix / HYPERKERN_ETCD_PREFIX; TLS and a user as for the plugin.
 */
import { Command } from 'commander';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../plugins/fleet/etcd-client.js';
import { placeGuest, readFleet } from '../plugins/fleet/fleet-view.js';
import { KeyLayout, type HostRecord } from '../plugins/fleet/key-layout.js';
import { etcdOptions } from '../plugins/fleet/options.js';
import { CliError } from './cli-error.js';
import { EXIT } from './exit-codes.js';
import { table } from './tables.js';

interface FleetFlags {
  endpoints?: string;
  prefix?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
  json?: boolean;
}

/** The CLI's action wrapper (hyperkern.ts `run`): each action names its arguments' types. */
type Run = (fn: (...args: never[]) => Promise<number | void>) => (...args: unknown[]) => Promise<void>;

const out = (text: string): void => void process.stdout.write(text);
const json = (value: unknown): void => out(`${JSON.stringify(value, null, 2)}\n`);

function connect(cmd: Command): { client: Etcd3; layout: KeyLayout; flags: FleetFlags } {
  const flags = cmd.optsWithGlobals<FleetFlags>();
  const env = process.env;
  const parsed = etcdOptions.safeParse({
    endpoints: (flags.endpoints ?? env.HYPERKERN_ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',').map((e) => e.trim()).filter(Boolean),
    prefix: flags.prefix ?? env.HYPERKERN_ETCD_PREFIX ?? '/hyperkern',
    callTimeoutMs: 5000,
    tls: flags.etcdCa ? { ca: flags.etcdCa, cert: flags.etcdCert, key: flags.etcdKey } : undefined,
    auth: flags.etcdUser ? { username: flags.etcdUser } : undefined,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(`etcd settings: ${issue.path.join('.')}: ${issue.message}`, EXIT.usage);
  }
  try {
    return { client: createEtcdClient(parsed.data), layout: new KeyLayout(parsed.data.prefix), flags };
  } catch (error) {
    throw new CliError((error as Error).message, EXIT.usage);
  }
}

/** Runs a read with the client closed afterwards; etcd errors become one line. */
async function withEtcd<T>(cmd: Command, read: (c: ReturnType<typeof connect>) => Promise<T>): Promise<T> {
  const connection = connect(cmd);
  try {
    return await read(connection);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`etcd did not answer: ${(error as Error).message}`);
  } finally {
    connection.client.close();
  }
}

function positive(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(`${what} must be a positive number; got "${value}"`, EXIT.usage);
  return n;
}

function byState(counts: Record<string, number>): string {
  return Object.entries(counts).map(([state, n]) => `${state}:${n}`).join(' ') || '-';
}

function hostRows(hosts: HostRecord[]): string {
  return table(
    ['HOST', 'URL', 'HEALTH', 'CPUS FREE/TOTAL', 'MEMORY FREE/TOTAL', 'GUESTS', 'VERSION', 'STARTED'],
    hosts.map((h) => [h.hostId, h.apiUrl, h.health, `${h.cpus.free}/${h.cpus.total}`, `${h.memoryMiB.free}/${h.memoryMiB.total} MiB`, byState(h.guests), h.version, h.startedAt]),
  );
}

export function addFleetCommands(program: Command, run: Run): void {
  const fleet = program
    .command('fleet')
    .description('the fleet in etcd: live hosts, every guest, where a guest fits (reads etcd, not an agent)')
    .option('--endpoints <urls>', 'etcd endpoints, comma-separated (env HYPERKERN_ETCD_ENDPOINTS; default http://127.0.0.1:2379)')
    .option('--prefix <prefix>', 'the agents\' key prefix (env HYPERKERN_ETCD_PREFIX; default /hyperkern)')
    .option('--etcd-ca <file>', 'PEM CA certificate for TLS to etcd')
    .option('--etcd-cert <file>', 'PEM client certificate')
    .option('--etcd-key <file>', 'PEM client key')
    .option('--etcd-user <name>', 'etcd user (password from env HYPERKERN_ETCD_PASSWORD)');

  fleet
    .command('hosts')
    .description('the live hosts (their key exists while their agent keeps its lease)')
    .action(
      run(async (_o, cmd: Command) => {
        const view = await withEtcd(cmd, ({ client, layout }) => readFleet(client, layout));
        const flags = cmd.optsWithGlobals<FleetFlags>();
        flags.json ? json(view.hosts) : out(view.hosts.length ? hostRows(view.hosts) : 'no live hosts\n');
      }),
    );

  fleet
    .command('guests')
    .description('every guest of the fleet, as its host last reported it')
    .option('--host <id>', "only this host's guests")
    .action(
      run(async (o: { host?: string }, cmd: Command) => {
        const view = await withEtcd(cmd, ({ client, layout }) => readFleet(client, layout, o.host));
        const flags = cmd.optsWithGlobals<FleetFlags>();
        if (flags.json) return json(view.guests);
        const live = new Set(view.hosts.map((h) => h.hostId));
        out(
          view.guests.length
            ? table(
                ['GUEST', 'HOST', 'HOST UP', 'STATE', 'CPU', 'MEMORY', 'METADATA'],
                view.guests.map((g) => [g.id, g.hostId, live.has(g.hostId) ? 'yes' : 'no', g.state, g.cpu, `${g.memory} MiB`, Object.entries(g.metadata).map(([k, v]) => `${k}=${v}`).join(',') || '-']),
              )
            : 'no guests\n',
        );
      }),
    );

  fleet
    .command('place')
    .description('the hosts that can hold such a guest, best first (most free memory)')
    .requiredOption('--cpu <n>', 'vCPUs the guest needs')
    .requiredOption('--memory <MiB>', 'memory the guest needs, MiB')
    .action(
      run(async (o: { cpu: string; memory: string }, cmd: Command) => {
        const cpu = positive(o.cpu, '--cpu');
        const memory = positive(o.memory, '--memory');
        const view = await withEtcd(cmd, ({ client, layout }) => readFleet(client, layout));
        const fits = placeGuest(view.hosts, cpu, memory);
        const flags = cmd.optsWithGlobals<FleetFlags>();
        if (flags.json) json(fits);
        else if (fits.length) out(table(['HOST', 'URL', 'MEMORY FREE', 'CPUS FREE'], fits.map((h) => [h.hostId, h.apiUrl, `${h.memoryMiB.free} MiB`, h.cpus.free])));
        else process.stderr.write(`hyperkern: no live, healthy host has ${cpu} vCPUs and ${memory} MiB free (of ${view.hosts.length} hosts)\n`);
        return fits.length ? EXIT.ok : EXIT.failed;
      }),
    );
}
