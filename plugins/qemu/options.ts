/**
 * The QEMU plugin's options (config `plugins[].options`). Parsing applies the
 * defaults, so a bare `{ "module": "qemu" }` works on a host with KVM.
 * Relative paths resolve against the agent's working directory.
 */
import path from 'node:path';
import { z } from 'zod';

export const ACCELERATORS = ['kvm', 'tcg', 'auto'] as const;
export type Accelerator = (typeof ACCELERATORS)[number];

/** Environment variable that overrides `accel`, e.g. for CI on hosts without usable KVM. */
export const ACCEL_ENV = 'HYPERKERN_QEMU_ACCEL';

export const qemuOptionsSchema = z
  .object({
    /** The emulator binary (a name on PATH or a path). */
    binary: z.string().min(1).default('qemu-system-x86_64'),
    /** qemu-img, which creates the qcow2 disks. */
    qemuImg: z.string().min(1).default('qemu-img'),
    /** kvm, tcg (pure emulation) or auto (kvm when QEMU can open it, else tcg). */
    accel: z.enum(ACCELERATORS).default('auto'),
    /** QEMU machine type. q35 has an AHCI controller for sata/ide disks. */
    machine: z.string().min(1).default('q35'),
    /** CPU model; empty means QEMU's default for the accelerator ("host" under kvm). */
    cpuModel: z.string().default(''),
    /** Folder of base images (and kernels) that disks and guests name by file name. */
    imagesDir: z.string().min(1).default('./images'),
    /** Give each guest a VNC display. */
    vnc: z.boolean().default(false),
    /**
     * With vnc: each guest's VNC server listens on a unix socket in its run
     * dir (vnc.sock) instead of a TCP port, reachable only through the
     * agent (GET /guests/{id}/vnc); the guest's `vnc` port is then 0.
     */
    vncSocket: z.boolean().default(false),
    /** Address VNC listens on (TCP, vncSocket off); loopback unless you put a proxy in front. */
    vncListen: z.string().min(1).default('127.0.0.1'),
    vncPortMin: z.number().int().min(5900).max(65535).default(5900),
    vncPortMax: z.number().int().min(5900).max(65535).default(5999),
    /**
     * Incoming live moves (docs/migration.md): the address the source is
     * told to connect its NBD and migration streams to; empty: the address
     * they listen on (the one the source reached this agent at). Set it
     * when the source reaches this host's streams elsewhere (NAT, a
     * forwarder).
     */
    migrationHost: z.string().max(255).default(''),
    /** The TCP port range those two streams listen in (a firewall's opening); 0: any free port. */
    migrationPortMin: z.number().int().min(0).max(65535).default(0),
    migrationPortMax: z.number().int().min(0).max(65535).default(0),
    /** console.log (ttyS0) is rotated past this many bytes to console.log.1, which keeps as many (docs/console.md). */
    consoleLogBytes: z.number().int().min(64 * 1024).max(1 << 30).default(1024 * 1024),
    /** Seconds shutdown waits for the guest to power off after the ACPI button. */
    shutdownTimeoutSeconds: z.number().positive().default(30),
    /** Seconds reboot waits for the guest to reset after ctrl-alt-delete. */
    rebootTimeoutSeconds: z.number().positive().default(30),
    /** Seconds poweroff waits after QMP quit, and again after SIGTERM, before SIGKILL. */
    poweroffGraceSeconds: z.number().positive().default(5),
    /**
     * Confine QEMU with its seccomp filter (-sandbox on, obsolete and
     * resource-control syscalls denied). The stricter elevateprivileges and
     * spawn switches would stop -daemonize, so they stay off.
     */
    sandbox: z.boolean().default(true),
    /**
     * Unprivileged user QEMU switches to once it has opened its disks, taps
     * and sockets (-runas). Empty keeps the agent's user.
     */
    runAs: z.string().regex(/^[a-z_][a-z0-9_-]*$/, 'a user name').or(z.literal('')).default(''),
    /** Extra arguments appended to every QEMU command line (operator escape hatch). */
    extraArgs: z.array(z.string()).default([]),
  })
  .refine((o) => o.vncPortMin <= o.vncPortMax, { message: 'vncPortMin must not exceed vncPortMax' })
  .refine((o) => (o.migrationPortMin === 0 && o.migrationPortMax === 0) || (o.migrationPortMin > 0 && o.migrationPortMin < o.migrationPortMax), {
    message: 'migrationPortMin and migrationPortMax: both 0 (any port), or a range of at least two ports',
  });

export type QemuOptions = z.infer<typeof qemuOptionsSchema>;

/** Options after applying the environment and resolving paths. */
export interface ResolvedQemuOptions extends QemuOptions {
  imagesDir: string;
  /** Where `accel` came from, for the log. */
  accelSource: 'config' | typeof ACCEL_ENV;
}

export function resolveOptions(options: QemuOptions, env: NodeJS.ProcessEnv = process.env): ResolvedQemuOptions {
  let accel = options.accel;
  let accelSource: ResolvedQemuOptions['accelSource'] = 'config';
  const fromEnv = env[ACCEL_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!(ACCELERATORS as readonly string[]).includes(fromEnv)) {
      throw new Error(`${ACCEL_ENV}="${fromEnv}" is not one of ${ACCELERATORS.join(', ')}`);
    }
    accel = fromEnv as Accelerator;
    accelSource = ACCEL_ENV;
  }
  return { ...options, accel, accelSource, imagesDir: path.resolve(options.imagesDir) };
}
