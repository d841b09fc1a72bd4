/**
 * Moving guests, as the kernel holds it: the records, the backends'
 * migrators, the source side (a job executor) and the target side, made
 * once at boot; `recover` resolves the moves a stopped agent left before it
 * takes jobs (docs/migration.md).
 */
import type { JobEngine } from '../jobs/job-engine.js';
import type { ActionPlans } from '../jobs/action-plan.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import type { AgentLogger } from '../logger.js';
import type { LoadedPlugin } from '../plugins/plugin-loader.js';
import type { StateStore } from '../state/state-store.js';
import { IncomingMigrations } from './incoming.js';
import { MigrationBackends } from './migration-backend.js';
import type { MigrationHooks } from './migration-hooks.js';
import { MigrationRecords, type PeerAddress } from './migration-records.js';
import { OutgoingMigrations } from './outgoing.js';
import type { HostLookup } from './target-resolver.js';

export interface MigrationsDeps {
  store: StateStore;
  registry: GuestRegistry;
  engine: JobEngine;
  plans: ActionPlans;
  plugins: LoadedPlugin[];
  log: AgentLogger;
  self(): PeerAddress;
  hooks?: MigrationHooks;
  lookup?: HostLookup;
}

export class Migrations {
  private constructor(
    readonly records: MigrationRecords,
    readonly outgoing: OutgoingMigrations,
    readonly incoming: IncomingMigrations,
  ) {}

  /** Loads the records and registers the migrate job with the engine (before it recovers its jobs). */
  static async create(deps: MigrationsDeps): Promise<Migrations> {
    const records = new MigrationRecords(deps.store);
    await records.load();
    const backends = new MigrationBackends(deps.plans, deps.plugins, deps.log);
    const hooks = deps.hooks ?? {};
    const shared = { registry: deps.registry, records, backends, store: deps.store, hooks, log: deps.log };
    const outgoing = new OutgoingMigrations({ ...shared, engine: deps.engine, self: deps.self, lookup: deps.lookup });
    const incoming = new IncomingMigrations(shared);
    return new Migrations(records, outgoing, incoming);
  }

  /** Every move a stopped agent left, resolved (or left to retry in the background while its peer is unreachable). */
  async recover(): Promise<void> {
    await this.incoming.recover();
    await this.outgoing.resolution.recover();
  }

  stop(): void {
    this.incoming.stop();
    this.outgoing.resolution.stop();
  }
}
