/**
 * How the agent's process is started: Node flags and environment that bound
 * its memory (issue 16; bench/HISTORY.md has the measurements).
 *
 * - No cap on V8's young generation. `--max-semi-space-size=2` held
 *   ~25 MiB less at 10,000 guests, but doubled the agent's CPU per GET
 *   /guests/{id} at 50 connections (59 vs 29 µs, 8 MiB: 43 µs; 5
 *   interleaved rounds against the uncapped agent in one run): every
 *   scavenge copies what the requests in flight hold, and a small young
 *   generation scavenges hundreds of times more often.
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
