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
  /** mistify's hinted back-off (seconds); read, not acted on. */
  retry?: number;
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

/** A guest disk image on this host (mistify rpc.Image). */
export interface Image {
  id: string;
  /** "kvm" for virtual machine disk images, "container" for container images. */
  type: string;
  /** Where the backend keeps it (a file name, a pool volume). */
  volume: string;
  snapshot: string;
  /** MiB a disk made from it gets (its virtual size). */
  size: number;
  /** "complete", or "pending" while it is being fetched or uploaded. */
  status: string;
}

/**
 * What image stages receive (mistify rpc.ImageRequest). `sha256` is
 * hyperkern's addition: the digest a fetched or uploaded image must have.
 */
export interface ImageRequest {
  id: string;
  type: string;
  /** Destination of a clone. */
  dest: string;
  /** Where a fetch comes from, generally a URL; "" = the configured image server. */
  source: string;
  sha256?: string;
}

/** What image stages answer (mistify rpc.ImageResponse): no images means not found. */
export interface ImageResponse {
  images: Image[];
}

/** A disk volume (mistify rpc.Volume). `size` in MiB; `device` its path in /dev. */
export interface Volume {
  id: string;
  size: number;
  device: string;
}

export interface VolumeRequest {
  id: string;
  size: number;
}

export interface VolumeResponse {
  volumes: Volume[];
}

/** A snapshot of a guest or of one of its disks (mistify rpc.Snapshot); `size` in MiB. */
export interface Snapshot {
  id: string;
  size: number;
}

/** mistify rpc.SnapshotRequest. */
export interface SnapshotRequest {
  id: string;
  /** The new snapshot's name. */
  dest: string;
  /** All of a guest's disks at one instant. */
  recursive: boolean;
  /** On rollback: also delete the snapshots taken after this one. */
  destroyMoreRecent: boolean;
}

export interface SnapshotResponse {
  snapshots: Snapshot[];
}
