/**
 * Manifest of the QEMU backend. Importing this module only declares the
 * plugin; nothing runs until the kernel constructs and starts it.
 */
import { actionStage, consoleStage, migrationStage, definePlugin, hypervisorBackendStages, PLUGIN_API_VERSION, QCOW2_SNAPSHOT_ROLES, snapshotDownloadStage, snapshotStage, vncStage } from '../../core/contract/index.js';
import { qemuOptionsSchema } from './options.js';
import { QemuPlugin } from './plugin.js';

export default definePlugin({
  id: 'qemu',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'Virtual machines as qemu-system-x86_64 processes driven over QMP (no libvirt)',
  options: qemuOptionsSchema,
  create: QemuPlugin,
  // What the stages not named after an action do in the derived plans (the rest serve the action they are named after).
  serves: {
    start: ['start', 'resume'],
    checkCreate: { action: 'create', check: true },
    ...QCOW2_SNAPSHOT_ROLES,
  },
  stages: (qemu) => ({
    ...hypervisorBackendStages(qemu.handlers),
    checkCreate: actionStage(qemu.checkCreate),
    checkCreateSnapshot: snapshotStage(qemu.snapshotHandlers.checkCreateSnapshot),
    createSnapshot: snapshotStage(qemu.snapshotHandlers.createSnapshot),
    listSnapshots: snapshotStage(qemu.snapshotHandlers.listSnapshots),
    getSnapshot: snapshotStage(qemu.snapshotHandlers.getSnapshot),
    deleteSnapshot: snapshotStage(qemu.snapshotHandlers.deleteSnapshot),
    checkRollbackSnapshot: snapshotStage(qemu.snapshotHandlers.checkRollbackSnapshot),
    rollbackSnapshot: snapshotStage(qemu.snapshotHandlers.rollbackSnapshot),
    downloadSnapshot: snapshotDownloadStage(qemu.snapshotHandlers.downloadSnapshot),
    // GET /guests/{id}/vnc: where this guest's VNC server listens (config actions.vnc).
    vnc: vncStage(qemu.vnc),
    // GET /guests/{id}/console: ttyS0, reached by the kernel directly (docs/console.md).
    console: consoleStage(qemu.console),
    // POST /guests/{id}/migrate and the agent-to-agent protocol: the kernel reaches it directly (docs/migration.md).
    migration: migrationStage(() => qemu.migrator),
  }),
});
