/**
 * The LXC plugin's options (config `plugins[].options`). Parsing applies the
 * defaults, so a bare `{ "module": "lxc" }` works on a Debian host with the
 * `lxc` package. Relative paths resolve against the agent's working directory.
 */
import path from 'node:path';
import { z } from 'zod';

/**
 * Capabilities every container loses (`lxc.cap.drop`), beyond what LXC's
 * common.conf drops: loading kernel modules, raw I/O, setting the clock, the
 * kernel log, process accounting, MAC policy, audit control, wake alarms.
 * `sys_boot` is kept: init inside uses reboot(2) to end or restart the container.
 */
export const DEFAULT_CAP_DROP = ['audit_control', 'block_suspend', 'mac_admin', 'mac_override', 'sys_module', 'sys_pacct', 'sys_rawio', 'sys_time', 'syslog', 'wake_alarm'];

export const lxcOptionsSchema = z
  .object({
    /** Folder of the LXC programs (lxc-start, lxc-monitor, lxc-info). A host without them answers container requests 501. */
    lxcBinDir: z.string().min(1).default('/usr/bin'),
    /** LXC's shipped config includes (common.conf, userns.conf, common.seccomp). */
    lxcConfigDir: z.string().min(1).default('/usr/share/lxc/config'),
    /** The images plugin's `containerImagesDir`: the unpacked read-only bases, one folder per image id. */
    containerImagesDir: z.string().min(1).default('./container-images'),
    /**
     * Run containers in a user namespace: root inside is `idmapBase` outside.
     * false runs them privileged (root inside is root outside), with the
     * capabilities in `capDrop` dropped and LXC's seccomp filter.
     */
    unprivileged: z.boolean().default(true),
    /** First host uid/gid of the containers' id range (root inside). */
    idmapBase: z.number().int().min(1).max(2 ** 32 - 2 ** 16).default(100000),
    /** Number of ids mapped (65536: every uid a Linux image uses). */
    idmapSize: z.number().int().min(1).max(2 ** 16).default(65536),
    /** Capabilities dropped in every container (names without CAP_, lower case). */
    capDrop: z.array(z.string().regex(/^[a-z_]+$/, 'a capability name such as sys_module')).default(DEFAULT_CAP_DROP),
    /** Seconds shutdown waits after the stop signal before its job fails (the container keeps running); `?timeout=` overrides. */
    shutdownTimeoutSeconds: z.number().positive().default(30),
    /** Seconds reboot waits for the container to stop after the stop signal, before it fails. */
    rebootTimeoutSeconds: z.number().positive().default(30),
    /** Seconds start waits for LXC to report the container running. */
    startTimeoutSeconds: z.number().positive().default(30),
    /** A container's console.log is rotated past this size; console.log.1 keeps its last this many bytes (docs/console.md). */
    consoleLogBytes: z.number().int().min(4096).default(1024 * 1024),
  })
  .strict();

export type LxcOptions = z.infer<typeof lxcOptionsSchema>;

export function resolveLxcOptions(options: LxcOptions): LxcOptions {
  return { ...options, lxcBinDir: path.resolve(options.lxcBinDir), lxcConfigDir: path.resolve(options.lxcConfigDir), containerImagesDir: path.resolve(options.containerImagesDir) };
}
