/**
 * How the agent's process is started: Node flags and environment that bound
 * its memory (issue 16; bench/HISTORY.md has the measurements).
 *
 * - `--max-semi-space-size=4`: V8's young generation at most 2 × 4 MiB.
 *   Uncapped it grew to 2 × 16 MiB under load and never shrank: at 10,000
 *   guests that alone put the agent over its 100 MiB. In interleaved runs
 *   on issue 26's code, GET /guests/{id} at 50 connections cost 28.4 vs
 *   28.7 µs of CPU (4 MiB vs uncapped) in one run and 31.2 vs 28.9 µs in
 *   another: at most ~2 µs, from scavenging more often. (Issue 16 measured
 *   59 vs 29 µs with 2 MiB, on code that allocated more per request.)
 * - `--expose-gc`: so that core/startup-gc.ts can collect start-up's
 *   garbage once the agent serves.
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates (SQLite on
 *   libuv's pool, V8's GC helpers) its own arena, which keeps what start-up
 *   freed; two arenas held ~10 MiB less at 10,000 guests.
 *
 * It cannot be set from inside the process once it runs, so it is in
 * the shebangs of cli/hyperkern.ts (`hyperkern serve`, which the systemd
 * unit runs) and core/main.ts, in `npm start`, and in the bench's agent;
 * test/kernel/runtime-flags.test.ts checks that these agree with this file.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--expose-gc'];
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The shebang that starts node with them. */
export const AGENT_SHEBANG = `#!/usr/bin/env -S ${[...Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v}`), 'node', ...AGENT_NODE_FLAGS].join(' ')}`;
