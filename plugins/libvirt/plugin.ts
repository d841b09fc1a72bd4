/**
 * The libvirt backend: guests as libvirt domains, driven through
 * long-lived virsh shells (see virsh-shell.ts and docs/libvirt.md for why).
 * Stages map the mistify lifecycle onto libvirt's API; libvirt's domain
 * events keep guest states true when something outside hyperkern changes a
 * domain; guests run on in libvirtd while the agent is down and are read
 * back when it starts.
 *
 * Only domains this plugin defined (named domainPrefix + guest id) or that a
 * client adopted explicitly (metadata libvirt.adopt) are ever touched.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inject, injectable } from 'tsyringe';
import {
  StageRejection,
  Tokens,
  type Disk,
  type Guest,
  type GuestDirectory,
  type GuestState,
  type GuestMetricsRequest,
  type GuestMetricsResponse,
  type GuestNicMetrics,
  type GuestRequest,
  type GuestResponse,
  type Logger,
  type PluginHealth,
  type PluginInstance,
  type HypervisorBackendHandlers,
  type StageContext,
} from '../../core/contract/index.js';
import { BulkStats, STATS_GROUPS, cpuMetricsOf, diskMetricsOf, nicCountersOf, readBlockStat, readIfStat, readVcpuInfo } from './domain-stats.js';
import { guestStateOf, isActive, isKnownState, parseDomState, type DomainState } from './domain-state.js';
import { DomainEventStream, type DomainEvent } from './domain-events.js';
import { buildDomainXml, type NicAttachment } from './domain-xml.js';
import { readExistingDomain } from './existing-domain.js';
import { BOOT_METADATA, findBootFile } from './images.js';
import { isTestDriver, resolveOptions, type LibvirtOptions, type ResolvedLibvirtOptions } from './options.js';
import { checkPool, createVolumes, deleteVolumes, volumesOf } from './storage.js';
import { VirshError, VirshShell } from './virsh-shell.js';

/** Guest metadata this plugin writes (and reads back). */
export const LIBVIRT_METADATA = {
  /** The libvirt domain name of the guest. */
  domain: 'libvirt.domain',
  /** The domain's UUID (the guest id for domains hyperkern defined). */
  uuid: 'libvirt.uuid',
  /** "true" when the domain existed before and was adopted; its storage is not hyperkern's. */
  adopted: 'libvirt.adopted',
  /** Set by a client on create: adopt this existing domain instead of defining one. */
  adopt: 'libvirt.adopt',
} as const;

/** Longest unix socket path (sun_path is 108 bytes with its NUL). */
const MAX_UNIX_SOCKET_PATH = 107;
const POLL_MS = 200;

@injectable()
export class LibvirtPlugin implements PluginInstance {
  private readonly options: ResolvedLibvirtOptions;
  /** The connection for lifecycle commands. */
  private readonly virsh: VirshShell;
  /**
   * A second connection for metrics and state reads, so they never wait
   * behind a slow lifecycle command (a start takes about a second). The test
   * driver keeps its world per connection, so there both are the same.
   */
  private readonly reader: VirshShell;
  /** One bulk reader per metrics type, each asking libvirt only for its groups. */
  private readonly stats: Record<'cpu' | 'disk' | 'nic', BulkStats>;
  private events: DomainEventStream | undefined;
  private domainType: 'kvm' | 'qemu' | 'test' = 'qemu';
  private libvirtVersion = 'unknown';
  /** Guests whose delete job runs: events about their domain are expected. */
  private readonly deleting = new Set<string>();
  /** Keeps state refreshes and observe() calls in event order. */
  private observations: Promise<void> = Promise.resolve();

  /** One handler per backend stage; the manifest makes them its stages. */
  readonly handlers: HypervisorBackendHandlers = {
    create: (request: GuestRequest, ctx: StageContext) => this.create(request, ctx),
    start: (request: GuestRequest, ctx: StageContext) => this.startGuest(request, ctx),
    shutdown: (request: GuestRequest, ctx: StageContext) => this.shutdown(request, ctx),
    reboot: (request: GuestRequest, ctx: StageContext) => this.reboot(request, ctx),
    restart: (request: GuestRequest) => this.restart(request),
    poweroff: (request: GuestRequest) => this.poweroff(request),
    suspend: (request: GuestRequest) => this.suspend(request),
    delete: (request: GuestRequest) => this.delete(request),
    cpuMetrics: (request: GuestMetricsRequest) => this.cpuMetrics(request),
    diskMetrics: (request: GuestMetricsRequest) => this.diskMetrics(request),
    nicMetrics: (request: GuestMetricsRequest) => this.nicMetrics(request),
  };

  constructor(
    @inject(Tokens.Options) options: LibvirtOptions,
    @inject(Tokens.Logger) private readonly log: Logger,
    @inject(Tokens.DataDir) private readonly dataDir: string,
    @inject(Tokens.Guests) private readonly guests: GuestDirectory,
    @inject(Tokens.PluginId) private readonly id: string,
  ) {
    this.options = resolveOptions(options);
    const timeoutMs = this.options.commandTimeoutSeconds * 1000;
    this.virsh = new VirshShell(this.options.virsh, this.options.uri, log.child({ connection: 'control' }), timeoutMs);
    this.reader = isTestDriver(this.options.uri) ? this.virsh : new VirshShell(this.options.virsh, this.options.uri, log.child({ connection: 'reader' }), timeoutMs);
    const ours = () => this.runningDomains();
    this.stats = {
      cpu: new BulkStats(this.reader, this.options.statsMaxAgeMs, STATS_GROUPS.cpu, ours),
      disk: new BulkStats(this.reader, this.options.statsMaxAgeMs, STATS_GROUPS.disk, ours),
      nic: new BulkStats(this.reader, this.options.statsMaxAgeMs, STATS_GROUPS.nic, ours),
    };
  }

  // ---- plugin lifecycle ----------------------------------------------------

  /** Connects, picks the domain type, follows events and reads back every guest's state. */
  async start(): Promise<void> {
    try {
      this.libvirtVersion = (await this.virsh.run(['version', '--daemon'], { readOnly: true })).trim().split('\n').join('; ');
    } catch (error) {
      throw new Error(
        `libvirt plugin "${this.id}": cannot connect to ${this.options.uri} (from ${this.options.uriSource}): ${(error as Error).message}. ` +
          'Is libvirtd running (scripts/start-libvirtd.sh on a host without systemd)? Set the URI with the "uri" option or HYPERKERN_LIBVIRT_URI.',
      );
    }
    this.domainType = await this.chooseDomainType();
    await checkPool(this.virsh, this.options.storagePool).catch((error: Error) => {
      // Not fatal: adopted guests and guests without disks need no pool.
      this.log.warn({ pool: this.options.storagePool, err: error.message }, 'storage pool unusable; creating guests with disks will fail until it is');
    });
    this.log.info(
      { uri: this.options.uri, uriSource: this.options.uriSource, libvirt: this.libvirtVersion, domainType: this.domainType, pool: this.options.storagePool, prefix: this.options.domainPrefix },
      'libvirt backend ready',
    );
    if (!isTestDriver(this.options.uri)) {
      this.events = new DomainEventStream(this.options.virsh, this.options.uri, this.log, {
        onEvent: (event) => this.onDomainEvent(event),
        onConnect: () => this.resyncAll('libvirt event stream (re)connected'),
      });
      this.events.start();
    }
    await this.resyncAll('agent start');
    await this.observations;
  }

  /** Lets go of libvirt; the domains keep running in libvirtd. */
  async stop(): Promise<void> {
    this.events?.stop();
    await this.observations;
    await this.virsh.close();
    if (this.reader !== this.virsh) await this.reader.close();
  }

  /** Healthy when libvirt answers now; details say how the connection has fared. */
  async health(): Promise<PluginHealth> {
    const details = {
      uri: this.options.uri,
      libvirt: this.libvirtVersion,
      domainType: this.domainType,
      virshPid: this.virsh.pid,
      virshStarts: this.virsh.spawned,
      readerPid: this.reader.pid,
      readerStarts: this.reader.spawned,
      eventStreamPid: this.events?.pid,
      eventStreamStarts: this.events?.starts,
      statsReads: { cpu: this.stats.cpu.reads, disk: this.stats.disk.reads, nic: this.stats.nic.reads },
    };
    try {
      await Promise.all([this.virsh, this.reader].map((shell) => shell.run(['uri'], { readOnly: true, timeoutMs: 5000 })));
    } catch (error) {
      return { healthy: false, message: `libvirt at ${this.options.uri} does not answer: ${(error as Error).message}`, details };
    }
    if (this.events && !this.events.pid) {
      return { healthy: false, message: 'the libvirt event stream is reconnecting; guest states may lag until it is back', details };
    }
    return { healthy: true, details };
  }

  private async chooseDomainType(): Promise<'kvm' | 'qemu' | 'test'> {
    const configured = this.options.domainType;
    if (configured !== 'auto') return configured;
    if (isTestDriver(this.options.uri)) return 'test';
    try {
      await this.virsh.run(['domcapabilities', '--virttype', 'kvm'], { readOnly: true });
      return 'kvm';
    } catch {
      return 'qemu';
    }
  }

  // ---- which domain is whose -------------------------------------------------

  /** The domain of a guest this plugin manages, or undefined. */
  private domainOf(guest: Guest): string | undefined {
    return guest.metadata?.[LIBVIRT_METADATA.domain] || undefined;
  }

  private requireDomain(guest: Guest): string {
    const domain = this.domainOf(guest);
    if (!domain) throw new StageRejection(409, `guest ${guest.id} has no libvirt domain (metadata ${LIBVIRT_METADATA.domain}); it was not created by libvirt plugin "${this.id}"`);
    return domain;
  }

  private async guestOfDomain(domain: string): Promise<Guest | undefined> {
    const prefix = this.options.domainPrefix;
    if (domain.startsWith(prefix)) {
      const guest = await this.guests.get(domain.slice(prefix.length));
      if (guest && this.domainOf(guest) === domain) return guest;
    }
    return (await this.guests.list()).find((g) => this.domainOf(g) === domain);
  }

  /** The domain's state; undefined when libvirt has no such domain. */
  private async domainState(domain: string, shell: VirshShell = this.virsh): Promise<DomainState | undefined> {
    try {
      return parseDomState(await shell.run(['domstate', '--reason', domain], { readOnly: true }));
    } catch (error) {
      if (error instanceof VirshError && /failed to get domain|Domain not found/i.test(error.detail)) return undefined;
      throw error;
    }
  }

  // ---- events and resync -----------------------------------------------------

  private onDomainEvent(event: DomainEvent): void {
    if (event.kind !== 'lifecycle') return;
    this.invalidateStats();
    this.enqueue(async () => {
      const guest = await this.guestOfDomain(event.domain);
      if (guest) await this.refreshState(guest, `libvirt event: ${event.detail}`);
    });
  }

  /** Re-read every managed guest's domain state (after start or a reconnect). */
  private resyncAll(reason: string): void {
    this.enqueue(async () => {
      for (const guest of await this.guests.list()) {
        if (this.domainOf(guest)) await this.refreshState(guest, reason);
      }
    });
  }

  private async refreshState(guest: Guest, reason: string): Promise<void> {
    // Jobs own these transitions; the job's result sets the state.
    if (guest.state === 'creating' || this.deleting.has(guest.id)) return;
    const domain = this.domainOf(guest)!;
    const state = await this.domainState(domain, this.reader);
    let next: GuestState;
    let why: string;
    if (!state) {
      next = 'error';
      why = `libvirt domain ${domain} no longer exists (undefined outside hyperkern)`;
    } else if (!isKnownState(state)) {
      this.log.warn({ guest: guest.id, domain, said: state }, 'virsh domstate printed no state I know; leaving the guest state as it is');
      return;
    } else {
      next = guestStateOf(state);
      why = `${reason}; libvirt says ${state.state}${state.reason ? ` (${state.reason})` : ''}`;
    }
    const current = await this.guests.get(guest.id);
    if (!current || current.state === next || this.deleting.has(guest.id)) return;
    const change: Partial<Guest> = { state: next };
    if (next === 'running' && this.options.vnc) change.vnc = await this.vncPort(domain);
    await this.guests.observe(guest.id, change, why);
  }

  private enqueue(task: () => Promise<void>): void {
    this.observations = this.observations.then(task).catch((error: Error) => this.log.error({ err: error.message }, 'could not record a state change libvirt reported'));
  }

  // ---- lifecycle stages ------------------------------------------------------

  private async create({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const adopt = guest.metadata?.[LIBVIRT_METADATA.adopt];
    if (adopt) return this.adopt(guest, adopt);
    const name = this.options.domainPrefix + guest.id;
    if (await this.domainState(name)) throw new StageRejection(409, `libvirt already has a domain named ${name}; delete it or create the guest with another id`);

    const nics = await this.planNics(guest);
    const boot = await this.bootFiles(guest);
    const guestDir = path.join(this.dataDir, guest.id);
    const serialSocket = path.join(guestDir, 'serial1.sock');
    if (Buffer.byteLength(serialSocket) > MAX_UNIX_SOCKET_PATH) {
      throw new Error(`serial socket path ${serialSocket} is longer than the ${MAX_UNIX_SOCKET_PATH} bytes unix sockets allow; configure a shorter dataDir`);
    }
    if (guest.disks.length > 0) await checkPool(this.virsh, this.options.storagePool);
    await mkdir(guestDir, { recursive: true });
    let disks: Disk[] = [];
    try {
      const others = (await this.guests.list()).filter((g) => g.id !== guest.id);
      disks = await createVolumes(this.virsh, guest, name, this.options.storagePool, { guestVolumes: volumesOf(others), domainPrefix: this.options.domainPrefix });
      ctx.signal.throwIfAborted();
      const defined: Guest = { ...guest, disks };
      const xml = buildDomainXml(defined, {
        name,
        uuid: guest.id,
        type: this.domainType,
        machine: this.options.machine,
        nics,
        ...boot,
        consoleLog: path.join(guestDir, 'console.log'),
        serialSocket,
        vncListen: this.options.vnc ? this.options.vncListen : undefined,
      });
      const xmlFile = path.join(guestDir, 'domain.xml');
      await writeFile(xmlFile, xml);
      await this.virsh.run(['define', xmlFile]);
      const metadata = { ...guest.metadata, [LIBVIRT_METADATA.domain]: name, [LIBVIRT_METADATA.uuid]: guest.id };
      return { guest: { ...defined, metadata, vnc: 0, state: 'off' }, message: `libvirt domain ${name} defined` };
    } catch (error) {
      // Leave nothing behind: a failed create must not hold storage.
      await deleteVolumes(this.virsh, disks).catch(() => undefined);
      await rm(guestDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Bridge, libvirt network, or user-mode networking for each NIC. */
  private async planNics(guest: Guest): Promise<Map<string, NicAttachment>> {
    const plan = new Map<string, NicAttachment>();
    if (guest.nics.length === 0) return plan;
    const networks = new Set((await this.virsh.run(['net-list', '--all', '--name'], { readOnly: true })).split('\n').map((l) => l.trim()).filter(Boolean));
    for (const nic of guest.nics) {
      // The name ends up in a /sys path and in virsh arguments: a Linux interface name or a libvirt network name only.
      if (nic.network && !/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/.test(nic.network)) {
        throw new StageRejection(400, `nic ${nic.name}: network "${nic.network}" is not a bridge or libvirt network name (letters, digits, _ . : -, not starting with "-" or ".")`);
      }
      if (!nic.network) plan.set(nic.name, { kind: 'user' });
      else if (networks.has(nic.network)) plan.set(nic.name, { kind: 'network', network: nic.network });
      else if (isTestDriver(this.options.uri) || existsSync(`/sys/class/net/${nic.network}/bridge`)) plan.set(nic.name, { kind: 'bridge', bridge: nic.network });
      else {
        throw new StageRejection(
          400,
          `nic ${nic.name}: "${nic.network}" is neither a libvirt network (${[...networks].join(', ') || 'none defined'}) nor a bridge on this host; leave network empty for user-mode networking`,
        );
      }
    }
    return plan;
  }

  private async bootFiles(guest: Guest): Promise<{ kernel?: string; initrd?: string; cmdline?: string }> {
    const kernel = guest.metadata?.[BOOT_METADATA.kernel];
    if (!kernel) return {};
    const initrd = guest.metadata?.[BOOT_METADATA.initrd];
    return {
      kernel: await findBootFile(this.options.imagesDir, kernel, 'kernel'),
      initrd: initrd ? await findBootFile(this.options.imagesDir, initrd, 'initrd') : undefined,
      cmdline: guest.metadata?.[BOOT_METADATA.cmdline] || undefined,
    };
  }

  /**
   * Takes an existing domain under hyperkern's management: the guest record
   * is filled from libvirt (vCPUs, memory, disks, NICs, state). Nothing in
   * libvirt changes. Its storage stays the operator's: delete undefines the
   * domain but removes no volume.
   */
  private async adopt(guest: Guest, domain: string): Promise<GuestResponse> {
    const owner = (await this.guests.list()).find((g) => g.id !== guest.id && this.domainOf(g) === domain);
    if (owner) throw new StageRejection(409, `libvirt domain ${domain} is already managed as guest ${owner.id}`);
    const { uuid, cpu = guest.cpu, memory = guest.memory, disks, nics } = await readExistingDomain(this.virsh, domain);
    const state = await this.domainState(domain);
    const metadata = { ...guest.metadata, [LIBVIRT_METADATA.domain]: domain, [LIBVIRT_METADATA.uuid]: uuid, [LIBVIRT_METADATA.adopted]: 'true' };
    const vnc = state && isActive(state) ? await this.vncPort(domain) : 0;
    return {
      guest: { ...guest, cpu, memory, disks, nics, vnc, metadata, state: state ? guestStateOf(state) : 'off' },
      message: `adopted libvirt domain ${domain}`,
    };
  }

  private async startGuest({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const domain = this.requireDomain(guest);
    const state = await this.mustExist(guest, domain);
    if (state.state === 'paused' || state.state === 'pmsuspended') {
      await this.virsh.run(state.state === 'paused' ? ['resume', domain] : ['dompmwakeup', domain]);
      return { guest: { ...guest, state: 'running' }, message: 'resumed' };
    }
    if (isActive(state)) return { guest: { ...guest, state: guestStateOf(state) }, message: 'already running' };
    ctx.signal.throwIfAborted();
    await this.virsh.run(['start', domain]);
    this.invalidateStats();
    const vnc = this.options.vnc ? await this.vncPort(domain) : guest.vnc;
    return { guest: { ...guest, state: 'running', vnc }, message: `libvirt domain ${domain} started (${this.domainType})` };
  }

  private async shutdown({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const domain = this.requireDomain(guest);
    const state = await this.mustExist(guest, domain);
    if (!isActive(state)) return { guest: { ...guest, state: guestStateOf(state) }, message: 'guest was not running' };
    const seconds = timeoutArg(args, this.options.shutdownTimeoutSeconds);
    // A paused guest cannot see the power button.
    if (state.state === 'paused') await this.virsh.run(['resume', domain]);
    await this.virsh.run(['shutdown', domain]);
    const final = await this.waitUntil(domain, (s) => !s || !isActive(s), seconds * 1000, ctx.signal);
    if (final === 'timeout') throw new Error(`guest did not power off within ${seconds} s (does it handle ACPI?)`);
    return { guest: { ...guest, state: final ? guestStateOf(final) : 'shutdown' }, message: 'guest powered off' };
  }

  private async reboot({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const domain = this.requireDomain(guest);
    const state = await this.mustExist(guest, domain);
    if (!isActive(state)) throw new StageRejection(409, `guest ${guest.id} is not running (libvirt: ${state.state}); reboot needs a running guest`);
    const seconds = timeoutArg(args, this.options.rebootTimeoutSeconds);
    if (state.state === 'paused') await this.virsh.run(['resume', domain]);
    // libvirt reports the guest's reset as a 'reboot' event; the test driver
    // reboots synchronously and its events are not visible to other processes.
    const rebooted = this.events?.waitFor((e) => e.kind === 'reboot' && e.domain === domain, seconds * 1000, ctx.signal);
    try {
      await this.virsh.run(['reboot', domain]);
    } catch (error) {
      rebooted?.cancel();
      throw error;
    }
    if (rebooted && !(await rebooted.done)) {
      ctx.signal.throwIfAborted();
      throw new Error(`guest did not reboot within ${seconds} s after the reboot request (does its OS handle ACPI?); use restart for a hard reset`);
    }
    return { guest: { ...guest, state: 'running' }, message: 'guest rebooted' };
  }

  private async restart({ guest }: GuestRequest): Promise<GuestResponse> {
    const domain = this.requireDomain(guest);
    const state = await this.mustExist(guest, domain);
    if (!isActive(state)) throw new StageRejection(409, `guest ${guest.id} is not running (libvirt: ${state.state}); restart needs a running or suspended guest`);
    await this.virsh.run(['reset', domain]);
    // A hard reset of a paused guest should leave it booting, not frozen.
    if (state.state === 'paused') await this.virsh.run(['resume', domain]);
    return { guest: { ...guest, state: 'running' }, message: 'guest reset' };
  }

  private async poweroff({ guest }: GuestRequest): Promise<GuestResponse> {
    const domain = this.requireDomain(guest);
    const state = await this.mustExist(guest, domain);
    if (!isActive(state)) return { guest: { ...guest, state: guestStateOf(state) }, message: 'guest was not running' };
    await this.virsh.run(['destroy', domain]);
    this.invalidateStats();
    return { guest: { ...guest, state: 'off' }, message: `libvirt domain ${domain} destroyed` };
  }

  private async suspend({ guest }: GuestRequest): Promise<GuestResponse> {
    const domain = this.requireDomain(guest);
    const state = await this.mustExist(guest, domain);
    if (state.state === 'paused') return { guest: { ...guest, state: 'suspended' }, message: 'already suspended' };
    if (!isActive(state)) throw new StageRejection(409, `guest ${guest.id} is not running (libvirt: ${state.state}); suspend needs a running guest`);
    await this.virsh.run(['suspend', domain]);
    return { guest: { ...guest, state: 'suspended' }, message: 'vCPUs paused' };
  }

  private async delete({ guest }: GuestRequest): Promise<GuestResponse> {
    const domain = this.domainOf(guest);
    this.deleting.add(guest.id);
    try {
      if (domain) {
        const state = await this.domainState(domain);
        if (state && isActive(state)) await this.virsh.run(['destroy', domain]);
        if (state) await this.undefine(domain);
      }
      // Only storage hyperkern created; an adopted domain's disks are the operator's.
      if (guest.metadata?.[LIBVIRT_METADATA.adopted] !== 'true') await deleteVolumes(this.virsh, guest.disks);
      await rm(path.join(this.dataDir, guest.id), { recursive: true, force: true });
      this.invalidateStats();
      return { guest: { ...guest, state: 'deleted' }, message: domain ? `libvirt domain ${domain} and its storage removed` : 'no libvirt domain to remove' };
    } finally {
      // Late events about the domain find no guest, or a deleted one.
      setTimeout(() => this.deleting.delete(guest.id), 5000).unref();
    }
  }

  private async undefine(domain: string): Promise<void> {
    try {
      await this.virsh.run(['undefine', domain]);
    } catch (error) {
      // UEFI guests (adopted ones) refuse a plain undefine; keep their NVRAM file.
      if (error instanceof VirshError && /nvram/i.test(error.detail)) await this.virsh.run(['undefine', '--keep-nvram', domain]);
      else throw error;
    }
  }

  private async mustExist(guest: Guest, domain: string): Promise<DomainState> {
    const state = await this.domainState(domain);
    if (!state) throw new Error(`libvirt has no domain ${domain} for guest ${guest.id} (undefined outside hyperkern?); delete the guest or re-create it`);
    return state;
  }

  /** Polls the domain's state until `done` says so; 'timeout' when it does not in time. */
  private async waitUntil(
    domain: string,
    done: (state: DomainState | undefined) => boolean,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<DomainState | undefined | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = await this.domainState(domain);
      if (done(state)) return state;
      if (Date.now() >= deadline) return 'timeout';
      signal.throwIfAborted();
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
    }
  }

  /** The VNC port libvirt chose at start (0 when there is none). */
  private async vncPort(domain: string): Promise<number> {
    try {
      const display = (await this.virsh.run(['vncdisplay', domain], { readOnly: true })).trim();
      const match = /:(\d+)$/.exec(display);
      return match ? 5900 + Number(match[1]) : 0;
    } catch {
      return 0;
    }
  }

  // ---- metrics: never behind a lifecycle job ---------------------------------

  private invalidateStats(): void {
    for (const reader of Object.values(this.stats)) reader.invalidate();
  }

  /** Domains of this plugin's guests that the registry believes have a QEMU. */
  private async runningDomains(): Promise<string[]> {
    return (await this.guests.list())
      .filter((g) => g.state === 'running' || g.state === 'suspended')
      .map((g) => this.domainOf(g))
      .filter((d): d is string => !!d);
  }

  /** Bulk statistics of a running guest's domain, or a 409 when it is not running. */
  private async domainStats(guest: Guest, type: 'cpu' | 'disk' | 'nic') {
    const domain = this.requireDomain(guest);
    const stats = await this.stats[type].of(domain);
    if (!stats) throw new StageRejection(409, `guest ${guest.id} is not running (state "${guest.state}"); ${type} metrics need a running domain`);
    return { domain, stats };
  }

  private async cpuMetrics({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> {
    const { domain, stats } = await this.domainStats(guest, 'cpu');
    return { guest, type: 'cpu', cpu: cpuMetricsOf(stats) ?? (await readVcpuInfo(this.reader, domain)) };
  }

  private async diskMetrics({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> {
    const { domain, stats } = await this.domainStats(guest, 'disk');
    let disk = diskMetricsOf(stats);
    if (!disk) {
      disk = {};
      for (const d of guest.disks) disk[d.device] = await readBlockStat(this.reader, domain, d.device);
    }
    // Only the guest's own disks, keyed by device, as the API promises.
    const known = new Set(guest.disks.map((d) => d.device));
    return { guest, type: 'disk', disk: Object.fromEntries(Object.entries(disk).filter(([device]) => known.has(device))) };
  }

  private async nicMetrics({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> {
    const { domain, stats } = await this.domainStats(guest, 'nic');
    const counters = nicCountersOf(stats);
    const nic: Record<string, GuestNicMetrics> = {};
    let devices: Map<string, string> | undefined;
    for (const n of guest.nics) {
      let device = n.device;
      if (!counters?.has(device)) {
        // Adopted domains get new host devices (vnetN) at each start: find it by MAC.
        devices ??= await this.hostDevicesByMac(domain);
        device = devices.get(n.mac.toLowerCase()) ?? device;
      }
      if (!device) continue; // user-mode networking: no host device, no counters
      const values = counters?.get(device) ?? (counters ? undefined : await readIfStat(this.reader, domain, device));
      if (values) nic[n.name] = { name: n.name, ...values };
    }
    return { guest, type: 'nic', nic };
  }

  private async hostDevicesByMac(domain: string): Promise<Map<string, string>> {
    const map = new Map<string, string>();
    for (const line of (await this.reader.run(['domiflist', domain], { readOnly: true })).split('\n')) {
      const parts = line.trim().split(/\s+/);
      if (parts.length >= 5 && parts[0] !== '-') map.set(parts[4].toLowerCase(), parts[0]);
    }
    return map;
  }
}

/** `timeout` from the request's args (query strings arrive as strings), in seconds. */
function timeoutArg(args: Record<string, unknown>, fallback: number): number {
  const raw = args?.timeout;
  if (raw === undefined || raw === null || raw === '') return fallback;
  const seconds = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new StageRejection(400, `timeout must be a positive number of seconds, got "${String(raw)}"`);
  return seconds;
}
