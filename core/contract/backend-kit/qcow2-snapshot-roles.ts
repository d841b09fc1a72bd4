/**
 * What the snapshot stages of a backend whose disks are qcow2 files (QEMU,
 * libvirt) serve, for its manifest's `serves`: the same stage names, checks
 * and timeouts, so both backends plan their snapshot actions alike.
 */
import type { StageRoles } from '../stage-roles.js';

export const QCOW2_SNAPSHOT_ROLES = {
  checkCreateSnapshot: { action: 'createSnapshot', check: true },
  // Internal qcow2 snapshots of large disks, and their download, take minutes, not a stage's default bound.
  createSnapshot: { action: 'createSnapshot', timeoutSeconds: 600 },
  deleteSnapshot: { action: 'deleteSnapshot', timeoutSeconds: 600 },
  checkRollbackSnapshot: { action: 'rollbackSnapshot', check: true },
  rollbackSnapshot: { action: 'rollbackSnapshot', timeoutSeconds: 600 },
  downloadSnapshot: { action: 'downloadSnapshot', timeoutSeconds: 3600 },
} as const satisfies StageRoles;
