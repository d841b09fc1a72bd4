/**
 * Console benchmark (issue 22): attach time and the echo round trip
 * (WebSocket -> guest -> WebSocket, p50/p99) with 1 and 50 viewers, and the
 * agent's CPU per KiB of console output, on the tiny guest under QEMU (TCG)
 * through a real agent (config/qemu.json); the same attach and echo on the
 * simulator's line-echo console, where no guest is in the way, show the
 * agent's own share. The reference is LXD 5.0 measured on this machine (the
 * issue's numbers: attach 10 ms, echo 23 ms).
 *
 *   npm run build && node dist/bench/console.js   (alone: no other QEMU or benchmark running)
 *
 * Writes its section of bench/RESULTS.md (between the console bench markers).
 */
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cpuMsOf } from './support/processes.js';
import { withMarkedSection } from './support/results-file.js';
import { removeDir, repoRoot, startAgent, type RunningAgent } from '../test/support/agent.js';
import { shippedConfig, simulatorConfig } from '../test/support/configs.js';
import { openConsole, type ConsoleViewerClient } from '../test/support/console-client.js';
import { CONSOLE_PROMPT } from '../test/fixtures/tiny-guest/index.js';
import { killTestQemus } from '../test/qemu/kill-test-qemus.js';
import { QemuWorld } from '../test/qemu/world.js';

const BEGIN = '<!-- console bench: begin (written by node dist/bench/console.js) -->';
const END = '<!-- console bench: end -->';
const LXD = { attachMs: 10, echoMs: 23 };
const TARGET = { attachMs: 5, echoP50Ms: 5 };
const ATTACHES = 40;
const ECHOES = 200;
const VIEWERS = 50;
/** Bytes the guest prints for the CPU measure. */
const OUTPUT_BYTES = 400_000;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const ms = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
const p50p99 = (values: number[]) => `${ms(percentile(values, 50))} / ${ms(percentile(values, 99))} ms`;

/** Times from `new WebSocket` to 'open', each viewer closed before the next (plus `present` viewers kept attached). */
async function attachTimes(url: string, id: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    const viewer = await openConsole(url, id);
    times.push(performance.now() - started);
    await viewer.close();
  }
  return times;
}

/**
 * One byte typed, until its echo comes back: `x` on the shell's line (busybox
 * and the simulator both echo it); the line is cleared every 40 bytes.
 */
async function echoTimes(viewer: ConsoleViewerClient, count: number, clear: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i += 1) {
    if (i % 40 === 0) await clear();
    const mark = viewer.received().length;
    const started = performance.now();
    viewer.ws.send(Buffer.from('x'));
    await viewer.waitFor(/x/, 10_000, mark);
    times.push(performance.now() - started);
  }
  return times;
}

/** Agent CPU (µs) per KiB the viewers received while the guest printed OUTPUT_BYTES. */
async function cpuPerKiB(agent: RunningAgent, viewer: ConsoleViewerClient, marker: string): Promise<{ usPerKiB: number; kib: number; seconds: number }> {
  const before = (await cpuMsOf(agent.pid))!;
  const mark = viewer.received().length;
  const started = performance.now();
  viewer.ws.send(Buffer.from(`yes hyperkern-console-bench-output | head -c ${OUTPUT_BYTES}; echo ${marker}-$((1+1))\r`));
  await viewer.waitFor(new RegExp(`${marker}-2`), 600_000, mark);
  const seconds = (performance.now() - started) / 1000;
  const after = (await cpuMsOf(agent.pid))!;
  const kib = (viewer.received().length - mark) / 1024;
  return { usPerKiB: ((after - before) * 1000) / kib, kib, seconds };
}

async function qemuRows(): Promise<string[]> {
  const world = await QemuWorld.create();
  const config = shippedConfig('qemu.json');
  for (const entry of config.plugins) {
    if (entry.module === 'qemu') entry.options = { ...entry.options, accel: 'tcg', imagesDir: world.imagesDir };
    if (entry.module === 'images') entry.options = { ...entry.options, imagesDir: world.imagesDir };
  }
  const agent = await startAgent({ config: { ...config, logLevel: 'info' }, env: { HYPERKERN_QEMU_ACCEL: 'tcg', HYPERKERN_LOG_LEVEL: 'info' } });
  const viewers: ConsoleViewerClient[] = [];
  try {
    const created = await agent.request('POST', '/guests?wait=300', { memory: 256, cpu: 1, disks: [{ size: 16 }], metadata: world.tinyBoot });
    if (created.status !== 200) throw new Error(`create answered ${created.status}: ${created.text}`);
    const id = (created.body as { id: string }).id;
    const prompt = new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`);
    const active = await openConsole(agent.url, id);
    viewers.push(active);
    active.ws.send(Buffer.from('\r'));
    await active.waitFor(prompt, 300_000);
    // Ctrl-U, Enter: an empty line, a fresh prompt.
    const clearOn = (viewer: ConsoleViewerClient) => async () => {
      const mark = viewer.received().length;
      viewer.ws.send(Buffer.from('\x15\r'));
      await viewer.waitFor(prompt, 30_000, mark);
    };
    await active.close();
    viewers.pop();

    const attachAlone = await attachTimes(agent.url, id, ATTACHES);
    const one = await openConsole(agent.url, id);
    viewers.push(one);
    const echoOne = await echoTimes(one, ECHOES, clearOn(one));
    await clearOn(one)();
    const cpuOne = await cpuPerKiB(agent, one, 'one-viewer');
    for (let i = 1; i < VIEWERS; i += 1) viewers.push(await openConsole(agent.url, id));
    const attachAmong = await attachTimes(agent.url, id, ATTACHES);
    const echoFifty = await echoTimes(one, ECHOES, clearOn(one));
    await clearOn(one)();
    const cpuFifty = await cpuPerKiB(agent, one, 'fifty-viewers');
    // Every viewer should have all of it: count those that fell behind (cut off, close 4001) or lack bytes.
    await new Promise((r) => setTimeout(r, 2000));
    const others = viewers.slice(1);
    const cut = others.filter((v) => v.ws.readyState !== v.ws.OPEN).length;
    const short = others.filter((v) => v.ws.readyState === v.ws.OPEN && !v.received().subarray(-1024).equals(one.received().subarray(-1024))).length;
    await agent.request('DELETE', `/guests/${id}?wait=120`);
    return [
      `| QEMU tiny guest (TCG) | attach, no other viewer (opens the guest's console) | ${p50p99(attachAlone)} | ${LXD.attachMs} ms | ≤ ${TARGET.attachMs} ms | ${percentile(attachAlone, 50) <= TARGET.attachMs ? 'yes' : '**no**'} |`,
      `|  | attach, ${VIEWERS - 1} viewers attached | ${p50p99(attachAmong)} | | | |`,
      `|  | echo round trip, 1 viewer | ${p50p99(echoOne)} | ${LXD.echoMs} ms | p50 ≤ ${TARGET.echoP50Ms} ms | ${percentile(echoOne, 50) <= TARGET.echoP50Ms ? 'yes' : '**no**'} |`,
      `|  | echo round trip, ${VIEWERS} viewers | ${p50p99(echoFifty)} | | | |`,
      `|  | agent CPU per KiB of output, 1 viewer | ${cpuOne.usPerKiB.toFixed(1)} µs (${cpuOne.kib.toFixed(0)} KiB in ${cpuOne.seconds.toFixed(1)} s) | | | |`,
      `|  | agent CPU per KiB of output, ${VIEWERS} viewers | ${cpuFifty.usPerKiB.toFixed(1)} µs (${cpuFifty.kib.toFixed(0)} KiB to each, in ${cpuFifty.seconds.toFixed(1)} s; of the ${others.length} other viewers ${cut} cut off as too slow, ${short} open without the same last KiB) | | | |`,
    ];
  } finally {
    await Promise.all(viewers.map((v) => v.close()));
    await agent.stop();
    await killTestQemus(path.join(agent.dataDir, 'plugins', 'qemu'));
    await removeDir(agent.dataDir);
    await world.dispose();
  }
}

async function simulatorRows(): Promise<string[]> {
  const agent = await startAgent({ config: simulatorConfig(), env: { HYPERKERN_LOG_LEVEL: 'info' } });
  const viewers: ConsoleViewerClient[] = [];
  try {
    const created = await agent.request('POST', '/guests?wait=30', { memory: 64 });
    const id = (created.body as { id: string }).id;
    const attachAlone = await attachTimes(agent.url, id, ATTACHES);
    const one = await openConsole(agent.url, id);
    viewers.push(one);
    const clear = async () => {
      const mark = one.received().length;
      one.ws.send(Buffer.from('\x03'));
      await one.waitFor(/\$ $/, 10_000, mark);
    };
    const echoOne = await echoTimes(one, ECHOES, clear);
    for (let i = 1; i < VIEWERS; i += 1) viewers.push(await openConsole(agent.url, id));
    const echoFifty = await echoTimes(one, ECHOES, clear);
    return [
      `| simulator (no guest: the agent's own share) | attach, no other viewer | ${p50p99(attachAlone)} | | | |`,
      `|  | echo round trip, 1 viewer | ${p50p99(echoOne)} | | | |`,
      `|  | echo round trip, ${VIEWERS} viewers | ${p50p99(echoFifty)} | | | |`,
    ];
  } finally {
    await Promise.all(viewers.map((v) => v.close()));
    await agent.stop();
    await removeDir(agent.dataDir);
  }
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  const loadBefore = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const rows = [...(await qemuRows()), ...(await simulatorRows())];
  const section = [
    BEGIN,
    '## Guest console (bench/console.ts)',
    '',
    `- date: ${started}; ${os.cpus().length} CPUs; load average ${loadBefore} at the start, ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end; node ${process.version}`,
    `- agent: its own process, config/qemu.json (TCG) or config/simulator.json, logs at info; clients: the \`ws\` package in the bench's process on 127.0.0.1, no token`,
    `- attach: \`new WebSocket\` to its 'open' (HTTP upgrade through the agent's app, auth, the guest's console opened when nobody watched), ${ATTACHES} in a row, each closed before the next`,
    `- echo: one byte typed (\`x\`) until its echo arrives (the guest's shell echoes it: busybox on ttyS0, or the simulator's line-echo shell), ${ECHOES} in a row; the other viewers only read`,
    `- CPU: user + system time of the agent process (/proc) while the guest prints ${OUTPUT_BYTES.toLocaleString('en-US')} bytes (\`yes … | head -c\`), divided by the KiB one viewer received`,
    `- reference: LXD 5.0 on this machine (issue 22): attach ${LXD.attachMs} ms, echo ${LXD.echoMs} ms`,
    '',
    '| backend | metric | p50 / p99 (or value) | LXD (reference) | target | met |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    END,
  ].join('\n');
  console.log(section);
  const file = path.join(repoRoot, 'bench/RESULTS.md');
  await writeFile(file, withMarkedSection(await readFile(file, 'utf8'), BEGIN, END, section.slice(BEGIN.length + 1, -(END.length + 1))));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
