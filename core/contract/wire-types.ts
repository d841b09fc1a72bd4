/**
 * The wire contract: data structures exactly as mistify-agent's clients and
 * sub-agents see them. Field names here are part of the public API; never
 * rename one. See ../shared/DESIGN.md "Data structures".
 */
import type { GuestState } from './lifecycle.js';

/** A network interface of a guest. */
export interface Nic {
  name: string;
  network: string;
  model: string;
  mac: string;
  address: string;
  netmask: string;
  gateway: string;
  /** Host-side device (tap) name, assigned by the agent. */
  device: string;
  vlans: number[];
}

/** A disk of a guest. `size` is in MiB. */
export interface Disk {
  bus: 'ide' | 'scsi' | 'sata' | 'virtio';
  /** Guest-side device name (vda, sdb, hdc...), assigned by the agent. */
  device: string;
  size: number;
  volume: string;
  image: string;
  source: string;
}

/** A virtual machine (or container) on this host. */
export interface Guest {
  id: string;
  /** "" means a virtual machine. */
  type: string;
  image: string;
  nics: Nic[];
  disks: Disk[];
  state: GuestState;
  /** MiB */
  memory: number;
  /** vCPUs */
  cpu: number;
  /** VNC port, 0 when none. */
  vnc: number;
  metadata: Record<string, string>;
}

/** One entry per vCPU; times in seconds. */
export interface GuestCpuMetrics {
  cpu_time: number;
  vcpu_time: number;
}

export interface GuestDiskMetrics {
  disk: string;
  read_ops: number;
  read_bytes: number;
  /** seconds */
  read_time: number;
  write_ops: number;
  write_bytes: number;
  /** seconds */
  write_time: number;
  flush_ops: number;
  /** seconds */
  flush_time: number;
}

export interface GuestNicMetrics {
  name: string;
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_drops: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_drops: number;
}

/** What every lifecycle stage receives (mistify rpc.GuestRequest). */
export interface GuestRequest {
  guest: Guest;
  action: string;
  args: Record<string, unknown>;
}

/** What every lifecycle stage returns (mistify rpc.GuestResponse). */
export interface GuestResponse {
  guest: Guest;
  message?: string;
}

export type MetricsType = 'cpu' | 'nic' | 'disk';

/** What a metrics stage receives (mistify rpc.GuestMetricsRequest). */
export interface GuestMetricsRequest {
  guest: Guest;
  type: MetricsType;
  args: Record<string, unknown>;
}

/** What a metrics stage returns (mistify rpc.GuestMetricsResponse). */
export interface GuestMetricsResponse {
  guest: Guest;
  type: MetricsType;
  cpu?: GuestCpuMetrics[];
  disk?: Record<string, GuestDiskMetrics>;
  nic?: Record<string, GuestNicMetrics>;
}

export type JobStatus = 'Queued' | 'Running' | 'Complete' | 'Error';

/** A queued action (mistify's Job shape: capitalised field names). */
export interface Job {
  ID: string;
  GuestID: string;
  Action: string;
  /** RFC 3339 timestamps. */
  QueuedAt: string;
  StartedAt: string;
  UpdatedAt: string;
  Status: JobStatus;
  Message: string;
}
