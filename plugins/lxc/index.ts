/**
 * Manifest of the LXC container backend. Importing this module only
 * declares the plugin; nothing runs until the kernel constructs and starts it.
 *
 * Its stages are named after the container actions (containerCreate,
 * containerStart, ...), so the kernel derives the plans of guests with
 * `type: "container"` from them; `check` runs inside the request of every
 * one (501 on a host without LXC, a create's 400s). Other modules of this
 * folder add their stages here (NICs, metrics, snapshots, console).
 */
import { actionStage, consoleStage, definePlugin, metricsStage, PLUGIN_API_VERSION, snapshotDownloadStage, snapshotStage, type StageRole } from '../../core/contract/index.js';
import { CONTAINER_SNAPSHOT_ROLES } from './container-snapshots-stages.js';
import { lxcOptionsSchema } from './options.js';
import { LxcPlugin } from './plugin.js';

/** The container lifecycle actions this plugin does, each checked by `check` first. */
const CONTAINER_ACTIONS = ['containerCreate', 'containerStart', 'containerShutdown', 'containerReboot', 'containerRestart', 'containerPoweroff', 'containerSuspend', 'containerResume', 'containerDelete'];

export default definePlugin({
  id: 'lxc',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'Container guests (type "container") as LXC 5 system containers over the images plugin\'s read-only bases',
  options: lxcOptionsSchema,
  create: LxcPlugin,
  serves: {
    check: CONTAINER_ACTIONS.map((action): StageRole => ({ action, check: true })),
    ...CONTAINER_SNAPSHOT_ROLES,
  },
  stages: (lxc) => ({
    check: actionStage(lxc.check),
    containerCreate: actionStage(lxc.create),
    containerStart: actionStage(lxc.startContainer),
    containerShutdown: actionStage(lxc.shutdown),
    containerReboot: actionStage(lxc.reboot),
    containerRestart: actionStage(lxc.restart),
    containerPoweroff: actionStage(lxc.poweroff),
    containerSuspend: actionStage(lxc.suspend),
    containerResume: actionStage(lxc.resume),
    containerDelete: actionStage(lxc.delete),
    containerCpuMetrics: metricsStage(lxc.cpuMetrics),
    containerNicMetrics: metricsStage(lxc.nicMetrics),
    containerDiskMetrics: metricsStage(lxc.diskMetrics),
    // Snapshots of the container's layer (container-snapshots*.ts), on the container-prefixed snapshot actions.
    containerCreateSnapshot: snapshotStage(lxc.snapshotStages.containerCreateSnapshot),
    containerListSnapshots: snapshotStage(lxc.snapshotStages.containerListSnapshots),
    containerGetSnapshot: snapshotStage(lxc.snapshotStages.containerGetSnapshot),
    containerDeleteSnapshot: snapshotStage(lxc.snapshotStages.containerDeleteSnapshot),
    containerCheckRollbackSnapshot: snapshotStage(lxc.snapshotStages.containerCheckRollbackSnapshot),
    containerRollbackSnapshot: snapshotStage(lxc.snapshotStages.containerRollbackSnapshot),
    containerDownloadSnapshot: snapshotDownloadStage(lxc.snapshotStages.containerDownloadSnapshot),
    // GET /guests/{id}/console: the container's /dev/console (container-console.ts).
    console: consoleStage(lxc.console),
  }),
});
