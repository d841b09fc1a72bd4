/**
 * How the agent's process is started: Node flags and environment that bound
 * its memory (issue 16; bench/HISTORY.md has the measurements).
 *
 * - No cap on V8's young generation: it grows to 2 × 16 MiB under load,
 *   and core/startup-gc.ts shrinks what start-up grew. Capped at 4 MiB
 *   semi-spaces, GET /guests/{id} cost ~10 % more CPU (four times the
 *   scavenges), and on an agent that had just served many creates ~60 %
 *   more (V8 then allocates request objects straight into the old
 *   generation: allocation-site pretenuring; bench/HISTORY.md, issue 26).
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates (SQLite on
 *   libuv's pool, V8's GC helpers) its own arena, which keeps what start-up
 *   freed; two arenas held ~10 MiB less at 10,000 guests.
 *
 * It cannot be set from inside the process once it runs, so it is in
 * the shebangs of cli/hyperkern.ts (`hyperkern serve`, which the systemd
 * unit runs) and core/main.ts, in `npm start`, and in the bench's agent;
 * test/kernel/runtime-flags.test.ts checks that these agree with this file.
 */
export const AGENT_NODE_FLAGS: readonly string[] = [];
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The shebang that starts node with them. */
export const AGENT_SHEBANG = `#!/usr/bin/env -S ${[...Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v}`), 'node', ...AGENT_NODE_FLAGS].join(' ')}`;
