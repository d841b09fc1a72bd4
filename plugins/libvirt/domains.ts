/**
 * Which libvirt domain is whose, and what libvirt says about it now. Only
 * domains this plugin defined (named domainPrefix + guest id) or that a
 * client adopted (metadata libvirt.adopt) belong to a guest; every lookup
 * goes through the guest's libvirt.domain metadata.
 */
import { StageRejection, vncTcpEndpoint, type Guest, type GuestDirectory } from '../../core/contract/index.js';
import { parseDomState, type DomainState } from './domain-state.js';
import { LIBVIRT_METADATA } from './metadata.js';
import { VirshError, type VirshShell } from './virsh-shell.js';

const POLL_MS = 200;

export class Domains {
  constructor(
    /** The lifecycle connection. */
    private readonly virsh: VirshShell,
    private readonly guests: GuestDirectory,
    private readonly domainPrefix: string,
    private readonly pluginId: string,
  ) {}

  /** The domain of a guest this plugin manages, or undefined. */
  of(guest: Guest): string | undefined {
    return guest.metadata?.[LIBVIRT_METADATA.domain] || undefined;
  }

  /** The guest's domain, or a 409 when the guest is not this plugin's. */
  require(guest: Guest): string {
    const domain = this.of(guest);
    if (!domain) throw new StageRejection(409, `guest ${guest.id} has no libvirt domain (metadata ${LIBVIRT_METADATA.domain}); it was not created by libvirt plugin "${this.pluginId}"`);
    return domain;
  }

  /** The guest a domain belongs to, if any. */
  async guestOf(domain: string): Promise<Guest | undefined> {
    const prefix = this.domainPrefix;
    if (domain.startsWith(prefix)) {
      const guest = await this.guests.get(domain.slice(prefix.length));
      if (guest && this.of(guest) === domain) return guest;
    }
    return (await this.guests.list()).find((g) => this.of(g) === domain);
  }

  /** Domains of this plugin's guests that the registry believes have a QEMU. */
  async running(): Promise<string[]> {
    return (await this.guests.list())
      .filter((g) => g.state === 'running' || g.state === 'suspended')
      .map((g) => this.of(g))
      .filter((d): d is string => !!d);
  }

  /** The domain's state; undefined when libvirt has no such domain. */
  async state(domain: string, shell: VirshShell = this.virsh): Promise<DomainState | undefined> {
    try {
      return parseDomState(await shell.run(['domstate', '--reason', domain], { readOnly: true }));
    } catch (error) {
      if (error instanceof VirshError && /failed to get domain|Domain not found/i.test(error.detail)) return undefined;
      throw error;
    }
  }

  /** The domain's state, or an error saying the domain went missing outside hyperkern. */
  async mustExist(guest: Guest, domain: string): Promise<DomainState> {
    const state = await this.state(domain);
    if (!state) throw new Error(`libvirt has no domain ${domain} for guest ${guest.id} (undefined outside hyperkern?); delete the guest or re-create it`);
    return state;
  }

  /** Polls the domain's state until `done` says so; 'timeout' when it does not in time. */
  async waitUntil(
    domain: string,
    done: (state: DomainState | undefined) => boolean,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<DomainState | undefined | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = await this.state(domain);
      if (done(state)) return state;
      if (Date.now() >= deadline) return 'timeout';
      signal.throwIfAborted();
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
    }
  }

  /** The VNC port libvirt chose at start (0 when there is none). */
  async vncPort(domain: string): Promise<number> {
    return (await this.vncEndpoint(domain))?.port ?? 0;
  }

  /**
   * Where the running domain's VNC server listens (virsh vncdisplay: "127.0.0.1:0",
   * ":0" for every address, "[::1]:0"), whether our XML or an adopted domain's
   * declares it; undefined when it has none.
   */
  async vncEndpoint(domain: string): Promise<{ host: string; port: number } | undefined> {
    try {
      const display = (await this.virsh.run(['vncdisplay', domain], { readOnly: true })).trim();
      const match = /^(.*):(\d+)$/.exec(display);
      if (!match) return undefined;
      return vncTcpEndpoint(match[1], 5900 + Number(match[2]));
    } catch {
      return undefined;
    }
  }

  /** Undefines the domain and libvirt's metadata of its snapshots (their data is in the volumes). */
  async undefine(domain: string): Promise<void> {
    try {
      await this.virsh.run(['undefine', '--snapshots-metadata', domain]);
    } catch (error) {
      // UEFI guests (adopted ones) refuse a plain undefine; keep their NVRAM file.
      if (error instanceof VirshError && /nvram/i.test(error.detail)) await this.virsh.run(['undefine', '--snapshots-metadata', '--keep-nvram', domain]);
      else throw error;
    }
  }
}
