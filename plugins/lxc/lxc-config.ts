/**
 * The LXC config of a container guest, written once at create. Everything
 * in it comes from the agent's options, the image's bundle and the guest's
 * checked fields (memory, cpu, NICs): never a host path from the request.
 */
import type { Guest } from '../../core/contract/index.js';
import type { ContainerPaths } from './container-paths.js';
import type { ImageBundle } from './image-bundle.js';
import type { LxcOptions } from './options.js';

/** CFS period of the CPU quota: 100 ms, the kernel's default. */
export const CPU_PERIOD_US = 100_000;

export interface ConfigInputs {
  guest: Guest;
  paths: ContainerPaths;
  bundle: ImageBundle;
  options: LxcOptions;
  /** Lines of the other modules: the NICs' (container-nics.ts: `lxc.net.*`, `lxc.net.0.type = empty` for none), block I/O accounting, ... */
  extraLines: string[];
}

export function lxcConfig({ guest, paths, bundle, options, extraLines }: ConfigInputs): string {
  const { process } = bundle;
  const lines = [
    '# Written by hyperkern (plugins/lxc) at create; the agent passes the command at each start.',
    // LXC's own defaults: devices cgroup allow list, mounts, its seccomp filter, the capabilities it drops.
    `lxc.include = ${options.lxcConfigDir}/common.conf`,
    ...(options.unprivileged
      ? [
          `lxc.include = ${options.lxcConfigDir}/userns.conf`,
          `lxc.idmap = u 0 ${options.idmapBase} ${options.idmapSize}`,
          `lxc.idmap = g 0 ${options.idmapBase} ${options.idmapSize}`,
        ]
      : []),
    // After the includes: userns.conf empties the drop list, this one stands.
    ...(options.capDrop.length ? [`lxc.cap.drop = ${options.capDrop.join(' ')}`] : []),
    `lxc.seccomp.profile = ${options.lxcConfigDir}/common.seccomp`,
    'lxc.apparmor.profile = unconfined', // no AppArmor on these hosts (docs/containers.md)
    `lxc.uts.name = ${hostnameOf(guest.id)}`,
    `lxc.rootfs.path = overlay:${bundle.rootfs}:${paths.upper}`,
    `lxc.signal.halt = ${process.stopSignal}`,
    `lxc.init.cwd = ${process.cwd}`,
    `lxc.init.uid = ${process.uid}`,
    `lxc.init.gid = ${process.gid}`,
    ...process.env.map((e) => `lxc.environment = ${e}`),
    'lxc.log.level = INFO', // how init ended (exit-reason.ts) is logged at INFO
    `lxc.log.file = ${paths.log}`,
    ...(guest.memory > 0 ? [`lxc.cgroup.memory.limit_in_bytes = ${guest.memory}M`] : []),
    ...(guest.cpu > 0 ? [`lxc.cgroup.cpu.cfs_period_us = ${CPU_PERIOD_US}`, `lxc.cgroup.cpu.cfs_quota_us = ${guest.cpu * CPU_PERIOD_US}`] : []),
    ...extraLines,
  ];
  return lines.join('\n') + '\n';
}

/** The container's hostname: the first group of its id (a UUID), a valid DNS label. */
function hostnameOf(id: string): string {
  return id.split('-')[0] || 'container';
}
