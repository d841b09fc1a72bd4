/**
 * cpu metrics of domains on this host's own libvirtd (qemu:///system) read
 * from /proc instead of `virsh domstats`: libvirt's vCPU statistics cost a
 * QMP round trip to the guest's QEMU each (it refreshes the vCPUs' halted
 * state), milliseconds under TCG, while the same numbers are a few
 * microsecond /proc reads (core/contract/backend-kit/process-cpu.ts, shared
 * with the QEMU backend).
 *
 * Which process and threads: libvirt's live status file of the domain
 * (STATE_DIR/NAME.xml, root-only, written by libvirtd while the domain is
 * active and removed when it stops) names QEMU's pid (`<domstatus pid=>`) and
 * each online vCPU's thread (`<vcpus><vcpu id= pid=/>`), exactly the threads
 * libvirt itself reads for vcpu.N.time. They are read once per domain start
 * and kept while the file stays the same (libvirt replaces it by rename on
 * every change, so a new inode or mtime means a restart or a vCPU hotplug);
 * the process's start time guards against a reused pid. Whenever this cannot
 * answer (file missing or unreadable, no vCPU threads listed, a thread gone)
 * it returns undefined and the caller asks libvirt, which also has the last
 * word on a domain that is not running.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { procCpuMetrics, readProcStat, type GuestCpuMetrics } from '../../core/contract/index.js';

/** QEMU's pid and its vCPU threads (in vCPU order), as libvirt's status file lists them. */
export interface DomainThreads {
  pid: number;
  vcpus: number[];
}

/** Parses libvirt's status XML; undefined when it names no pid or no vCPU threads (e.g. QEMU still starting). */
export function parseStatusXml(xml: string): DomainThreads | undefined {
  const status = /<domstatus\b[^>]*>/.exec(xml);
  if (!status) return undefined;
  const pid = Number(attribute(status[0], 'pid'));
  // Only the status part: the domain definition after it has <vcpus><vcpu id=.../> entries of its own (without pid).
  const end = xml.indexOf('<domain ', status.index);
  const head = xml.slice(status.index, end < 0 ? xml.length : end);
  const vcpus: { id: number; tid: number }[] = [];
  for (const m of head.matchAll(/<vcpu\b[^>]*>/g)) {
    const id = Number(attribute(m[0], 'id'));
    const tid = Number(attribute(m[0], 'pid'));
    if (Number.isInteger(id) && tid > 0) vcpus.push({ id, tid });
  }
  if (!(pid > 0) || vcpus.length === 0) return undefined;
  return { pid, vcpus: vcpus.sort((a, b) => a.id - b.id).map((v) => v.tid) };
}

function attribute(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(tag)?.slice(1).find((v) => v !== undefined);
}

interface Resolved extends DomainThreads {
  startTicks: number;
  /** The status file it came from: the same inode and mtime mean the same QEMU and vCPUs. */
  ino: number;
  mtimeMs: number;
}

export class ProcCpuMetrics {
  private readonly resolved = new Map<string, Resolved>();
  /** Requests answered from /proc, and those left to libvirt (for health details). */
  readonly counts = { proc: 0, fallback: 0 };

  constructor(private readonly stateDir: string) {}

  /** cpu metrics of a running domain, or undefined: ask libvirt. */
  cpu(domain: string): GuestCpuMetrics[] | undefined {
    const answer = this.read(domain);
    if (answer) this.counts.proc += 1;
    else this.counts.fallback += 1;
    return answer;
  }

  /** Forget what was resolved (a domain started, stopped or went away). */
  invalidate(): void {
    this.resolved.clear();
  }

  private read(domain: string): GuestCpuMetrics[] | undefined {
    // libvirt refuses "/" in domain names; anything else maps to one file.
    if (domain.includes('/') || domain.startsWith('.')) return undefined;
    const file = path.join(this.stateDir, `${domain}.xml`);
    let known = this.resolved.get(domain);
    for (let attempt = 0; attempt < 2; attempt++) {
      let stats: Stats;
      try {
        stats = statSync(file);
      } catch {
        this.resolved.delete(domain);
        return undefined; // not active (or not readable): libvirt says which
      }
      if (!known || known.ino !== stats.ino || known.mtimeMs !== stats.mtimeMs) known = this.resolve(domain, file, stats);
      if (!known) return undefined;
      try {
        return procCpuMetrics(known.pid, known.vcpus, known.startTicks);
      } catch {
        // QEMU or a vCPU thread is gone: the domain stopped or restarted meanwhile; look once more.
        this.resolved.delete(domain);
        known = undefined;
      }
    }
    return undefined;
  }

  private resolve(domain: string, file: string, stats: Stats): Resolved | undefined {
    this.resolved.delete(domain);
    let threads: DomainThreads | undefined;
    let startTicks: number;
    try {
      threads = parseStatusXml(readFileSync(file, 'utf8'));
      if (!threads) return undefined;
      startTicks = readProcStat(`/proc/${threads.pid}/stat`).startTicks;
    } catch {
      return undefined;
    }
    const resolved = { ...threads, startTicks, ino: stats.ino, mtimeMs: stats.mtimeMs };
    this.resolved.set(domain, resolved);
    return resolved;
  }
}

/**
 * Whether `uri` reaches this host's system libvirtd over its default socket,
 * whose QEMU status files are in /run/libvirt/qemu: qemu:///system or
 * qemu+unix:///system without parameters. Remote hosts, session daemons,
 * other sockets and other drivers have their QEMUs elsewhere (or none).
 */
export function isLocalSystemUri(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  return ['qemu:', 'qemu+unix:'].includes(url.protocol) && url.host === '' && url.pathname === '/system' && url.search === '';
}
