/**
 * How the agent's process is started: Node flags and environment that bound
 * its memory (issue 16; bench/HISTORY.md has the measurements).
 *
 * - `--max-semi-space-size=2`: V8 grows its young generation to 32 MiB
 *   (16 MiB semi-spaces) while start-up loads the state and under request
 *   load, and keeps it; capped at 2 MiB semi-spaces the agent at 10,000
 *   guests holds ~25 MiB less, and GET /guests/{id} at 50 connections cost
 *   the same CPU per request in an interleaved A/B (37-41 µs either way).
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates (SQLite on
 *   libuv's pool, V8's GC helpers) its own arena, which keeps what start-up
 *   freed; two arenas held ~10 MiB less at 10,000 guests.
 *
 * Neither can be set from inside the process once it runs, so they are in
 * the shebangs of cli/hyperkern.ts (`hyperkern serve`, which the systemd
 * unit runs) and core/main.ts, in `npm start`, and in the bench's agent;
 * test/kernel/runtime-flags.test.ts checks that these agree with this file.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The shebang that starts node with both. */
export const AGENT_SHEBANG = `#!/usr/bin/env -S ${Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v}`).join(' ')} node ${AGENT_NODE_FLAGS.join(' ')}`;
