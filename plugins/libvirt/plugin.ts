/**
 * The libvirt backend: guests as libvirt domains, driven through
 * long-lived virsh shells (see virsh-shell.ts and docs/libvirt.md for why).
 * Stages map the mistify lifecycle onto libvirt's API; libvirt's domain
 * events keep guest states true when something outside hyperkern changes a
 * domain (state-sync.ts); guests run on in libvirtd while the agent is down
 * and are read back when it starts.
 *
 * Only domains this plugin defined (named domainPrefix + guest id) or that a
 * client adopted explicitly (metadata libvirt.adopt) are ever touched
 * (domains.ts). Metrics live in guest-metrics.ts, NIC attachment in
 * nic-plan.ts, disks in storage.ts, the domain XML in domain-xml.ts.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inject, injectable } from 'tsyringe';
import {
  checkUnixSocketPath,
  StageRejection,
  timeoutArg,
  Tokens,
  type Disk,
  type Guest,
  type GuestDirectory,
  type GuestMetricsRequest,
  type GuestMetricsResponse,
  type GuestRequest,
  type GuestResponse,
  type Logger,
  type PluginHealth,
  type PluginInstance,
  type HypervisorBackendHandlers,
  type StageContext,
} from '../../core/contract/index.js';
import { guestStateOf, isActive } from './domain-state.js';
import { DomainEventStream } from './domain-events.js';
import { consoleFiles, LibvirtConsoles } from './serial-console.js';
import { buildDomainXml } from './domain-xml.js';
import { Domains } from './domains.js';
import { readExistingDomain } from './existing-domain.js';
import { GuestMetrics } from './guest-metrics.js';
import { imageHandlers, type ImageHandlers } from './image-stages.js';
import { bootFilesOf } from './images.js';
import { LIBVIRT_METADATA } from './metadata.js';
import { planNics } from './nic-plan.js';
import { isTestDriver, resolveOptions, type LibvirtOptions, type ResolvedLibvirtOptions } from './options.js';
import { PoolImages } from './pool-images.js';
import { isLocalSystemUri, ProcCpuMetrics } from './proc-cpu.js';
import { LibvirtSnapshots, snapshotHandlers } from './snapshots.js';
import { StateSync } from './state-sync.js';
import { checkPool, createVolumes, deleteVolumes, volumesOf } from './storage.js';
import { VirshShell } from './virsh-shell.js';

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
  /** The domains (the vnc stage reads where their VNC server listens). */
  readonly domains: Domains;
  /** The guests' serial consoles (the console stage). */
  readonly consoles: LibvirtConsoles;
  private readonly metrics: GuestMetrics;
  private readonly sync: StateSync;
  private readonly images: PoolImages;
  private events: DomainEventStream | undefined;
  private domainType: 'kvm' | 'qemu' | 'test' = 'qemu';
  private libvirtVersion = 'unknown';

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
    cpuMetrics: ({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> => this.metrics.cpu(guest),
    diskMetrics: ({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> => this.metrics.disk(guest),
    nicMetrics: ({ guest }: GuestMetricsRequest): Promise<GuestMetricsResponse> => this.metrics.nic(guest),
  };

  /** The image stages (images as volumes of the storage pool); the manifest lists them. */
  readonly imageHandlers: ImageHandlers;
  /** The snapshot stages (libvirt domain snapshots, qcow2 disk snapshots); the manifest lists them. */
  readonly snapshotHandlers: ReturnType<typeof snapshotHandlers>;
  private readonly snapshots: LibvirtSnapshots;

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
    this.domains = new Domains(this.virsh, guests, this.options.domainPrefix, id);
    this.metrics = new GuestMetrics(this.domains, this.reader, this.options.statsMaxAgeMs, procCpuFor(this.options));
    this.consoles = new LibvirtConsoles(dataDir, log, (domain) => this.domains.guestOf(domain));
    this.sync = new StateSync(this.domains, guests, this.reader, log, { vnc: this.options.vnc }, () => this.metrics.invalidate());
    this.images = new PoolImages(this.virsh, guests, log, {
      pool: this.options.storagePool,
      uri: this.options.uri,
      virshBinary: this.options.virsh,
      qemuImg: this.options.qemuImg,
      domainPrefix: this.options.domainPrefix,
      workDir: path.join(dataDir, 'image-uploads'),
      maxBytes: this.options.maxImageSizeMiB * 1024 * 1024,
    });
    this.snapshots = new LibvirtSnapshots(this.virsh, this.domains, { qemuImg: this.options.qemuImg, workDir: path.join(dataDir, 'snapshot-exports') });
    this.snapshotHandlers = snapshotHandlers(this.snapshots);
    this.imageHandlers = imageHandlers(this.images, this.virsh, guests, { pool: this.options.storagePool, domainPrefix: this.options.domainPrefix, fetchDir: this.options.fetchDir });
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
    await this.snapshots.open().catch((error: Error) => this.log.warn({ err: error.message }, 'could not remove unfinished snapshot exports'));
    await this.images.open().catch((error: Error) => this.log.warn({ err: error.message }, 'could not clean up after unfinished image uploads'));
    this.log.info(
      {
        uri: this.options.uri,
        uriSource: this.options.uriSource,
        libvirt: this.libvirtVersion,
        domainType: this.domainType,
        pool: this.options.storagePool,
        prefix: this.options.domainPrefix,
        cpuMetrics: cpuSourceNote(this.options, !!this.metrics.cpuSources),
      },
      'libvirt backend ready',
    );
    if (!isTestDriver(this.options.uri)) {
      this.events = new DomainEventStream(this.options.virsh, this.options.uri, this.log, {
        onEvent: (event) => (this.sync.onDomainEvent(event), this.consoles.domainEvent(event)),
        onConnect: () => this.sync.resyncAll('libvirt event stream (re)connected'),
      });
      this.events.start();
    }
    this.sync.resyncAll('agent start');
    await this.sync.idle();
  }

  /** Lets go of libvirt; the domains keep running in libvirtd. */
  async stop(): Promise<void> {
    this.events?.stop();
    this.consoles.closeAll();
    await this.sync.idle();
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
      statsReads: this.metrics.reads,
      cpuMetricsFromProc: this.metrics.cpuSources ?? 'off',
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

  // ---- lifecycle stages ------------------------------------------------------

  private async create({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const adopt = guest.metadata?.[LIBVIRT_METADATA.adopt];
    if (adopt) return this.adopt(guest, adopt);
    const name = this.options.domainPrefix + guest.id;
    if (await this.domains.state(name)) throw new StageRejection(409, `libvirt already has a domain named ${name}; delete it or create the guest with another id`);

    const nics = await planNics(this.virsh, guest, isTestDriver(this.options.uri));
    const boot = await bootFilesOf(this.options.imagesDir, guest);
    const guestDir = path.join(this.dataDir, guest.id);
    const serialSocket = path.join(guestDir, 'serial1.sock');
    checkUnixSocketPath(serialSocket, 'serial socket');
    const ttyS0 = consoleFiles(this.dataDir, guest.id);
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
        consoleLog: ttyS0.log,
        consoleSocket: ttyS0.socket,
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

  /**
   * Takes an existing domain under hyperkern's management: the guest record
   * is filled from libvirt (vCPUs, memory, disks, NICs, state). Nothing in
   * libvirt changes. Its storage stays the operator's: delete undefines the
   * domain but removes no volume.
   */
  private async adopt(guest: Guest, domain: string): Promise<GuestResponse> {
    const owner = (await this.guests.list()).find((g) => g.id !== guest.id && this.domains.of(g) === domain);
    if (owner) throw new StageRejection(409, `libvirt domain ${domain} is already managed as guest ${owner.id}`);
    const { uuid, cpu = guest.cpu, memory = guest.memory, disks, nics } = await readExistingDomain(this.virsh, domain);
    const state = await this.domains.state(domain);
    const metadata = { ...guest.metadata, [LIBVIRT_METADATA.domain]: domain, [LIBVIRT_METADATA.uuid]: uuid, [LIBVIRT_METADATA.adopted]: 'true' };
    const vnc = state && isActive(state) ? await this.domains.vncPort(domain) : 0;
    return {
      guest: { ...guest, cpu, memory, disks, nics, vnc, metadata, state: state ? guestStateOf(state) : 'off' },
      message: `adopted libvirt domain ${domain}`,
    };
  }

  private async startGuest({ guest }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const domain = this.domains.require(guest);
    const state = await this.domains.mustExist(guest, domain);
    if (state.state === 'paused' || state.state === 'pmsuspended') {
      await this.virsh.run(state.state === 'paused' ? ['resume', domain] : ['dompmwakeup', domain]);
      return { guest: { ...guest, state: 'running' }, message: 'resumed' };
    }
    if (isActive(state)) return { guest: { ...guest, state: guestStateOf(state) }, message: 'already running' };
    ctx.signal.throwIfAborted();
    await this.virsh.run(['start', domain]);
    this.metrics.invalidate();
    const vnc = this.options.vnc ? await this.domains.vncPort(domain) : guest.vnc;
    return { guest: { ...guest, state: 'running', vnc }, message: `libvirt domain ${domain} started (${this.domainType})` };
  }

  private async shutdown({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const domain = this.domains.require(guest);
    const state = await this.domains.mustExist(guest, domain);
    if (!isActive(state)) return { guest: { ...guest, state: guestStateOf(state) }, message: 'guest was not running' };
    const seconds = timeoutArg(args, this.options.shutdownTimeoutSeconds);
    // A paused guest cannot see the power button.
    if (state.state === 'paused') await this.virsh.run(['resume', domain]);
    await this.virsh.run(['shutdown', domain]);
    const final = await this.domains.waitUntil(domain, (s) => !s || !isActive(s), seconds * 1000, ctx.signal);
    if (final === 'timeout') throw new Error(`guest did not power off within ${seconds} s (does it handle ACPI?)`);
    return { guest: { ...guest, state: final ? guestStateOf(final) : 'shutdown' }, message: 'guest powered off' };
  }

  private async reboot({ guest, args }: GuestRequest, ctx: StageContext): Promise<GuestResponse> {
    const domain = this.domains.require(guest);
    const state = await this.domains.mustExist(guest, domain);
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
    const domain = this.domains.require(guest);
    const state = await this.domains.mustExist(guest, domain);
    if (!isActive(state)) throw new StageRejection(409, `guest ${guest.id} is not running (libvirt: ${state.state}); restart needs a running or suspended guest`);
    await this.virsh.run(['reset', domain]);
    // A hard reset of a paused guest should leave it booting, not frozen.
    if (state.state === 'paused') await this.virsh.run(['resume', domain]);
    return { guest: { ...guest, state: 'running' }, message: 'guest reset' };
  }

  private async poweroff({ guest }: GuestRequest): Promise<GuestResponse> {
    const domain = this.domains.require(guest);
    const state = await this.domains.mustExist(guest, domain);
    if (!isActive(state)) return { guest: { ...guest, state: guestStateOf(state) }, message: 'guest was not running' };
    await this.virsh.run(['destroy', domain]);
    this.metrics.invalidate();
    return { guest: { ...guest, state: 'off' }, message: `libvirt domain ${domain} destroyed` };
  }

  private async suspend({ guest }: GuestRequest): Promise<GuestResponse> {
    const domain = this.domains.require(guest);
    const state = await this.domains.mustExist(guest, domain);
    if (state.state === 'paused') return { guest: { ...guest, state: 'suspended' }, message: 'already suspended' };
    if (!isActive(state)) throw new StageRejection(409, `guest ${guest.id} is not running (libvirt: ${state.state}); suspend needs a running guest`);
    await this.virsh.run(['suspend', domain]);
    return { guest: { ...guest, state: 'suspended' }, message: 'vCPUs paused' };
  }

  private async delete({ guest }: GuestRequest): Promise<GuestResponse> {
    const domain = this.domains.of(guest);
    this.sync.deleteStarted(guest.id);
    try {
      if (domain) {
        const state = await this.domains.state(domain);
        if (state && isActive(state)) await this.virsh.run(['destroy', domain]);
        if (state) await this.domains.undefine(domain);
      }
      // Only storage hyperkern created; an adopted domain's disks are the operator's.
      if (guest.metadata?.[LIBVIRT_METADATA.adopted] !== 'true') await deleteVolumes(this.virsh, guest.disks);
      this.consoles.closeAll(guest.id);
      await rm(path.join(this.dataDir, guest.id), { recursive: true, force: true });
      this.metrics.invalidate();
      return { guest: { ...guest, state: 'deleted' }, message: domain ? `libvirt domain ${domain} and its storage removed` : 'no libvirt domain to remove' };
    } finally {
      this.sync.deleteEnded(guest.id);
    }
  }
}

/**
 * The /proc reader of cpu metrics when the option and the URI allow it (see
 * proc-cpu.ts and the cpuMetrics option), else undefined: every cpu request
 * asks libvirt. Whether libvirt's status files can be read is seen per
 * request (libvirtd may create its folder after the agent starts).
 */
function procCpuFor(options: ResolvedLibvirtOptions): ProcCpuMetrics | undefined {
  return options.cpuMetrics === 'auto' && isLocalSystemUri(options.uri) ? new ProcCpuMetrics(options.qemuStateDir) : undefined;
}

/** What the log says about where cpu metrics come from, once libvirt answers. */
function cpuSourceNote(options: ResolvedLibvirtOptions, proc: boolean): string {
  if (!proc) return options.cpuMetrics === 'auto' ? `virsh domstats (${options.uri} is not this host's system libvirtd)` : 'virsh domstats (cpuMetrics option)';
  try {
    accessSync(options.qemuStateDir, fsConstants.R_OK | fsConstants.X_OK);
    return `/proc (QEMU pids and vCPU threads from libvirt's status files in ${options.qemuStateDir})`;
  } catch {
    return `virsh domstats for now: ${options.qemuStateDir} (qemuStateDir) is not readable by the agent`;
  }
}
