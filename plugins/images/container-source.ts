/**
 * The source of a container image, parsed strictly before anything runs.
 * Three skopeo transports are accepted and nothing else (no `dir:`,
 * `docker-daemon:`, `containers-storage:`...), so client bytes never make
 * the host read a path of the client's choosing:
 *   docker://HOST[:PORT]/NAME[:TAG|@sha256:DIGEST]   a registry, HOST named explicitly
 *   oci-archive:https://... | oci-archive:file:///dir/x.tar   an OCI archive (a file: under fileSourceDirs)
 *   oci:/dir/layout[:REF]                           an OCI layout directory under fileSourceDirs
 * A registry on loopback may speak plain HTTP (as Docker allows); any other
 * needs TLS unless insecureRegistries lists it.
 */
import { realpath, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { checkFileSource, parseSource, SourceRefused, type SourcePolicy } from './image-source.js';

export interface ContainerSourcePolicy extends SourcePolicy {
  /** Registries (host or host:port) that may be reached without TLS though not on loopback. */
  insecureRegistries: readonly string[];
}

export type ContainerSource =
  | { transport: 'docker'; registry: string; reference: string; tlsVerify: boolean }
  | { transport: 'oci-archive'; url: URL }
  | { transport: 'oci'; dir: string; ref: string };

const NAME_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const LAYOUT_REF = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const EXAMPLES = 'docker://registry.example/web:1.2, oci-archive:https://images.example/web.tar, oci-archive:file:///srv/images/web.tar or oci:/srv/images/web-layout:1.2';

/** The parsed source, or a SourceRefused saying what is wrong (no file is touched here). */
export function parseContainerSource(source: string, policy: ContainerSourcePolicy): ContainerSource {
  const colon = source.indexOf(':');
  const transport = colon > 0 ? source.slice(0, colon) : '';
  const rest = source.slice(colon + 1);
  if (transport === 'docker') return parseDocker(rest, policy);
  if (transport === 'oci-archive') return parseArchive(rest, policy);
  if (transport === 'oci') return parseLayout(rest, policy);
  throw new SourceRefused(`container image source "${source.slice(0, 200)}" must use the docker://, oci-archive: or oci: transport (e.g. ${EXAMPLES})`);
}

function parseDocker(rest: string, policy: ContainerSourcePolicy): ContainerSource {
  const refused = (why: string) => new SourceRefused(`docker source "docker:${rest.slice(0, 200)}": ${why} (e.g. docker://registry.example/web:1.2)`);
  if (!rest.startsWith('//')) throw refused('it must start with docker://');
  const ref = rest.slice(2);
  const slash = ref.indexOf('/');
  if (slash < 0) throw refused('it names no repository after the registry');
  const registry = ref.slice(0, slash);
  // The registry is always explicit: a short name would be resolved through the host's registries.conf.
  if (!HOST.test(registry) || !(registry.includes('.') || registry.includes(':') || registry === 'localhost')) {
    throw refused('it must name its registry host explicitly (a host name with a dot, an address, or host:port)');
  }
  let repository = ref.slice(slash + 1);
  let version = '';
  const at = repository.indexOf('@');
  if (at >= 0) {
    version = repository.slice(at);
    repository = repository.slice(0, at);
    if (!DIGEST.test(version.slice(1))) throw refused('a digest must be @sha256: and 64 hex digits');
  } else {
    const lastColon = repository.lastIndexOf(':');
    if (lastColon >= 0) {
      version = repository.slice(lastColon);
      repository = repository.slice(0, lastColon);
      if (!TAG.test(version.slice(1))) throw refused('the tag must be 1-128 letters, digits, "_", "." or "-"');
    }
  }
  if (!repository || repository.length > 255 || !repository.split('/').every((c) => NAME_COMPONENT.test(c))) {
    throw refused('the repository must be lower-case path components (letters, digits, ".", "_", "-")');
  }
  const loopback = isLoopback(registry);
  const listed = isListed(registry, policy);
  if (!loopback && !listed && !policy.allowedSchemes.includes('https')) {
    throw refused('https is not among the allowed schemes (the images plugin\'s allowedSchemes option)');
  }
  return { transport: 'docker', registry, reference: `//${registry}/${repository}${version}`, tlsVerify: !(loopback || listed) };
}

/** An archive over plain HTTP comes only from loopback or a listed host: nothing proves its bytes otherwise. */
function parseArchive(rest: string, policy: ContainerSourcePolicy): ContainerSource {
  const url = parseSource(rest, policy);
  if (url.protocol === 'http:' && !isLoopback(url.host) && !isListed(url.host, policy)) {
    throw new SourceRefused(
      `source oci-archive:${url.href} is plain HTTP from a host that is not on loopback; use https, or list ${url.host} in the images plugin's insecureRegistries option`,
    );
  }
  return { transport: 'oci-archive', url };
}

function isListed(registry: string, policy: ContainerSourcePolicy): boolean {
  return policy.insecureRegistries.includes(registry) || policy.insecureRegistries.includes(hostOf(registry));
}

function parseLayout(rest: string, policy: ContainerSourcePolicy): ContainerSource {
  const refused = new SourceRefused(
    `source "oci:${rest.slice(0, 200)}" is not an OCI layout this host serves images from: oci: sources must be directories inside the folders of the images plugin's fileSourceDirs option, as oci:/dir/layout[:ref]`,
  );
  const [dir, ref = '', ...extra] = rest.split(':');
  if (extra.length || !path.isAbsolute(dir) || (ref && !LAYOUT_REF.test(ref))) throw refused;
  return { transport: 'oci', dir: path.resolve(dir), ref };
}

/**
 * The request-time check of a local source (a file: archive or an oci:
 * layout): inside fileSourceDirs after resolving links, of the right kind.
 * One message whatever the reason, so the API does not tell which host paths exist.
 */
export async function checkLocalContainerSource(source: ContainerSource, policy: ContainerSourcePolicy): Promise<void> {
  if (source.transport === 'oci-archive' && source.url.protocol === 'file:') {
    await checkFileSource(source.url, policy);
  } else if (source.transport === 'oci') {
    const refused = new SourceRefused(
      `source oci:${source.dir} is not an OCI layout this host serves images from: oci: sources must be directories inside the folders of the images plugin's fileSourceDirs option`,
    );
    const roots = await Promise.all(policy.fileSourceDirs.map(async (d) => [path.resolve(d), await realpath(d).catch(() => path.resolve(d))]));
    const inside = (candidate: string) => roots.some((pair) => pair.some((root) => candidate.startsWith(root + path.sep)));
    if (!inside(source.dir)) throw refused;
    const real = await realpath(source.dir).catch(() => undefined);
    if (!real || !inside(real) || !(await stat(real).then((s) => s.isDirectory(), () => false))) throw refused;
    source.dir = real;
  }
}

function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon > 0 ? registry.slice(0, colon) : registry;
}

/** 127.0.0.0/8 and ::1 (by address; "localhost" is a name the host's resolver could send anywhere). */
export function isLoopback(registry: string): boolean {
  const host = hostOf(registry);
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return /^(0{0,4}:){2,7}0{0,3}1$/.test(host) || host === '::1';
  return false;
}
