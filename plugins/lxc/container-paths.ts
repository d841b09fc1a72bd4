/**
 * Where each container guest lives, and what LXC and the kernel call it:
 * one module, so every part of the backend (lifecycle, metrics, snapshots,
 * consoles) names the same files and cgroups. A NIC's host device (the
 * veth's host end) is its `device`, as container-nics.ts plans it.
 *
 * Layout under the plugin's data dir:
 *   containers/                    the LXC path (`lxc-* -P`), one folder per container
 *   containers/hk-<id>/config      the LXC config this plugin writes at create
 *   containers/hk-<id>/upper/      the container's writable layer (overlayfs upper dir)
 *   containers/hk-<id>/work/       overlayfs's work dir (LXC wants it beside upper/)
 *   containers/hk-<id>/lxc.log     LXC's log (INFO: the line saying how init ended)
 *   containers/hk-<id>/monitor.pid the pid of LXC's monitor process while it runs
 *   containers/hk-<id>/snapshots/  its snapshots (container-snapshots.ts)
 *   containers/hk-<id>/snapshot-freeze.json  while a snapshot holds it frozen (container-snapshots-recovery.ts)
 */
import path from 'node:path';

/** Folder of the containers (LXC's "lxcpath") in the plugin's data dir. */
export const CONTAINERS_FOLDER = 'containers';

/** Prefix of every container this plugin makes: its containers are told from others' by name. */
export const CONTAINER_NAME_PREFIX = 'hk-';

/** The LXC container name of a guest (guest ids are UUIDs, so names are unique across lxc paths, as cgroups need). */
export function containerName(guestId: string): string {
  return `${CONTAINER_NAME_PREFIX}${guestId}`;
}

/** The guest id of a container this plugin made, or undefined for another's. */
export function guestIdOf(name: string): string | undefined {
  return name.startsWith(CONTAINER_NAME_PREFIX) ? name.slice(CONTAINER_NAME_PREFIX.length) : undefined;
}

/** Root of the v1 cgroup hierarchies (one mount per controller on this host's hybrid layout). */
export const CGROUP_ROOT = '/sys/fs/cgroup';

export class ContainerPaths {
  /** LXC's name of the container. */
  readonly name: string;
  /** The LXC path (`-P`): the parent of every container folder. */
  readonly lxcPath: string;
  /** This container's folder. */
  readonly dir: string;
  /** The LXC config (`lxc.*` lines). */
  readonly config: string;
  /** The writable layer over the image's read-only base. */
  readonly upper: string;
  /** overlayfs's work dir (same filesystem as upper). */
  readonly work: string;
  /** LXC's log of the last start (truncated at each start). */
  readonly log: string;
  /** The pid of LXC's monitor process (`lxc-start -p`), removed by LXC when the container stops. */
  readonly monitorPidFile: string;

  constructor(
    dataDir: string,
    readonly guestId: string,
  ) {
    this.name = containerName(guestId);
    this.lxcPath = path.join(dataDir, CONTAINERS_FOLDER);
    this.dir = path.join(this.lxcPath, this.name);
    this.config = path.join(this.dir, 'config');
    this.upper = path.join(this.dir, 'upper');
    this.work = path.join(this.dir, 'work');
    this.log = path.join(this.dir, 'lxc.log');
    this.monitorPidFile = path.join(this.dir, 'monitor.pid');
  }

  /**
   * The container's cgroup in a v1 controller (`freezer`, `memory`, `cpu`,
   * `cpuacct`, `blkio`, `pids`): LXC 5 names the payload cgroup
   * `lxc.payload.<name>` under each controller's root.
   */
  cgroup(controller: string): string {
    return path.join(CGROUP_ROOT, controller, `lxc.payload.${this.name}`);
  }

  /** LXC's monitor cgroup in a controller (`lxc.monitor.<name>`), gone with the container. */
  monitorCgroup(controller: string): string {
    return path.join(CGROUP_ROOT, controller, `lxc.monitor.${this.name}`);
  }
}
