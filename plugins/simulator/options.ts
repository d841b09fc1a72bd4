import { z } from 'zod';

const actions = z.enum([
  'create', 'delete', 'start', 'shutdown', 'reboot', 'restart', 'poweroff', 'suspend', 'cpuMetrics', 'nicMetrics', 'diskMetrics',
  'createSnapshot', 'listSnapshots', 'getSnapshot', 'deleteSnapshot', 'rollbackSnapshot', 'downloadSnapshot',
]);

export const simulatorOptions = z
  .object({
    /** Milliseconds each action's stage takes, e.g. { "start": 2000 }. */
    delays: z.partialRecord(actions, z.number().int().nonnegative().max(3_600_000)).default({}),
    /** Failure injection: the stage of these actions fails with this message. */
    failures: z.partialRecord(actions, z.string().min(1)).default({}),
    /** Seconds a shutdown waits for a guest that ignores ACPI (metadata simulator.acpi = "ignore"). */
    shutdownTimeoutSeconds: z.number().positive().max(3600).default(30),
    /** Bytes of a simulated snapshot download (a disk image's stand-in). */
    snapshotDownloadBytes: z.number().int().nonnegative().max(64 * 1024 ** 3).default(1024 * 1024),
    /** Bytes of console output kept per guest (in memory) for GET /guests/{id}/console/log. */
    consoleLogBytes: z.number().int().positive().max(16 * 1024 * 1024).default(64 * 1024),
  })
  .strict();

export type SimulatorOptions = z.infer<typeof simulatorOptions>;
export type SimulatedAction = z.infer<typeof actions>;
/** Every action the simulator's hooks (delays, failures) know. */
export const simulatedActions: readonly SimulatedAction[] = actions.options;
