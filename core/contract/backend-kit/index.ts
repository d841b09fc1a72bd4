/**
 * core/contract/backend-kit: what every hypervisor backend needs besides its
 * hypervisor: stage timeouts from a request's args, the unix socket path
 * limit, the image-name check, which image a disk is built on, NIC checks,
 * host device (tap) names, an ordered queue for the state changes the
 * hypervisor reports, per-guest serial work, a qcow2 snapshot as a
 * download stream, a local QEMU's cpu metrics from /proc, where to
 * connect to a VNC server on TCP, the image format check (raw or
 * self-contained qcow2, told from the bytes), the consoles the kernel
 * opened with their size-rotated logs, followed as they grow, and kernel
 * counter files (/proc, /sys, cgroups) kept open, a host device's counters
 * read through them. Part of the contract, so a plugin reaches it through
 * core/contract/index.ts.
 * May import: contract.
 */
export * from './stage-timeout.js';
export * from './unix-socket-path.js';
export * from './image-name.js';
export * from './disk-image.js';
export * from './nic-checks.js';
export * from './device-names.js';
export * from './observe-queue.js';
export * from './per-guest-serial.js';
export * from './snapshot-export.js';
export * from './process-cpu.js';
export * from './vnc-endpoint.js';
export * from './image-format.js';
export * from './console-switchboard.js';
export * from './console-log.js';
export * from './log-follower.js';
export * from './qcow2-snapshot-roles.js';
export * from './counter-file.js';
export * from './interface-counters.js';
