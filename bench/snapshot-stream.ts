/**
 * Snapshot streaming benchmark on the QEMU backend: the agent's RSS
 * (VmRSS from /proc/<pid>/status, every 100 ms) while it receives a 2 GiB
 * qcow2 upload (PUT /images/{id}) and while it serves a 2 GiB snapshot
 * download (GET /guests/{id}/snapshots/{name}/download), both with curl on
 * loopback. Both must stay flat: bytes are streamed, never collected.
 *
 * Each image is a qcow2 of SIZE MiB fully written by qemu-io (a byte pattern
 * per 64 MiB, so every cluster is allocated and the download is as big as
 * the image). The guest's disk is an overlay of the uploaded image and stays
 * off; its snapshot's download folds the image in (qemu-img convert), so the
 * stream is the whole SIZE.
 *
 *   npm run build && flock /tmp/hk-heavy.lock node dist/bench/snapshot-stream.js [--size-mib 256,2048]
 *
 * Writes its section of bench/RESULTS.md (between the snapshot-stream markers).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { rssOf } from './support/processes.js';
import { makeTempDir, removeDir, repoRoot, startAgent, type RunningAgent } from '../test/support/agent.js';
import { shippedConfig } from '../test/support/configs.js';

const exec = promisify(execFile);
const MIB = 1024 * 1024;
const sizeArg = process.argv.indexOf('--size-mib');
/** Sizes to transfer, MiB: a smaller one next to 2 GiB shows RSS does not follow the size. */
const SIZES_MIB = (sizeArg > 0 ? process.argv[sizeArg + 1]! : '256,2048').split(',').map(Number);
const CHUNK_MIB = 64;

/** A qcow2 whose every cluster holds data: one qemu-io pattern write per 64 MiB. */
async function makeImage(file: string, sizeMiB: number): Promise<void> {
  await exec('qemu-img', ['create', '-q', '-f', 'qcow2', file, `${sizeMiB}M`]);
  const writes: string[] = [];
  for (let at = 0; at < sizeMiB; at += CHUNK_MIB) writes.push('-c', `write -q -P ${(at / CHUNK_MIB) % 251 + 1} ${at}M ${Math.min(CHUNK_MIB, sizeMiB - at)}M`);
  await exec('qemu-io', ['-f', 'qcow2', ...writes, file], { timeout: 1_800_000 });
}

interface Sampled<T> {
  result: T;
  before: number;
  peak: number;
  samples: number;
}

/** Samples the RSS of `pid` every 100 ms while `work` runs. */
async function sampled<T>(pid: number, work: () => Promise<T>): Promise<Sampled<T>> {
  const before = (await rssOf(pid))?.rss ?? NaN;
  let peak = before;
  let samples = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const now = (await rssOf(pid))?.rss;
      if (now !== undefined) {
        samples++;
        if (now > peak) peak = now;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    return { result: await work(), before, peak, samples };
  } finally {
    running = false;
    await sampler;
  }
}

interface CurlResult {
  status: string;
  bytes: number;
  firstByteS: number;
  totalS: number;
}

/** curl with its own timings: -w prints status, bytes, time to first byte and total. */
function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-w', '%{http_code} %{size_download} %{size_upload} %{time_starttransfer} %{time_total}', ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const [status, down, up, first, total] = out.trim().split(/\s+/).slice(-5);
      if (code !== 0) return reject(new Error(`curl ${args.join(' ')} exited ${code}: ${err}`));
      resolve({ status: status!, bytes: Math.max(Number(down), Number(up)), firstByteS: Number(first), totalS: Number(total) });
    });
  });
}

async function expectStatus(agent: RunningAgent, method: string, url: string, body: unknown, status: number): Promise<any> {
  const res = await agent.request(method, url, body);
  if (res.status !== status) throw new Error(`${method} ${url} answered ${res.status} (wanted ${status}): ${res.text}`);
  return res.body;
}

const mibs = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;
const rate = (bytes: number, seconds: number) => `${(bytes / MIB / seconds).toFixed(0)} MiB/s`;

/** One size: upload it, snapshot a guest built on it, download the snapshot; RSS sampled during both transfers. */
async function transfer(agent: RunningAgent, work: string, sizeMiB: number): Promise<string[]> {
  const source = path.join(work, `image-${sizeMiB}.qcow2`);
  const made = Date.now();
  await makeImage(source, sizeMiB);
  console.log(`made ${mibs((await stat(source)).size)} qcow2 in ${((Date.now() - made) / 1000).toFixed(1)} s`);
  const id = `bench-${sizeMiB}`;
  const upload = await sampled(agent.pid, () => curl(['-o', '/dev/null', '-T', source, `${agent.url}/images/${id}`]));
  if (upload.result.status !== '201') throw new Error(`upload answered ${upload.result.status}`);
  await rm(source);

  const guest = await expectStatus(agent, 'POST', '/guests?wait=120&start=false', { memory: 128, cpu: 1, disks: [{ image: id }] }, 200);
  await expectStatus(agent, 'POST', `/guests/${guest.id}/snapshots?wait=300`, { id: '', dest: 'bench', recursive: true, destroyMoreRecent: false }, 200);
  const downloaded = path.join(work, 'downloaded.qcow2');
  const download = await sampled(agent.pid, () => curl(['--fail', '-o', downloaded, `${agent.url}/guests/${guest.id}/snapshots/bench/download`]));
  if (download.result.status !== '200') throw new Error(`download answered ${download.result.status}`);
  await exec('qemu-img', ['check', '-q', downloaded], { timeout: 600_000 });
  await rm(downloaded);
  const leftovers = (await exec('find', [agent.dataDir, '-name', '.snapshot-export-*'])).stdout.trim();
  if (leftovers) throw new Error(`export temp files left behind: ${leftovers}`);
  await expectStatus(agent, 'DELETE', `/guests/${guest.id}?wait=60`, null, 200);
  await expectStatus(agent, 'DELETE', `/images/${id}?wait=60`, null, 200);

  const u = upload.result;
  const d = download.result;
  return [
    `| PUT /images/{id}, ${mibs(u.bytes)} qcow2 (curl -T) | ${u.totalS.toFixed(1)} s (${rate(u.bytes, u.totalS)}) | ${mibs(upload.before)} → ${mibs(upload.peak)} (+${mibs(upload.peak - upload.before)}), ${upload.samples} samples |`,
    `| GET …/snapshots/{name}/download, ${mibs(d.bytes)} qcow2 (curl -o) | ${d.totalS.toFixed(1)} s: ${d.firstByteS.toFixed(1)} s qemu-img convert before the first byte, then ${rate(d.bytes, d.totalS - d.firstByteS)} | ${mibs(download.before)} → ${mibs(download.peak)} (+${mibs(download.peak - download.before)}), ${download.samples} samples |`,
  ];
}

async function main(): Promise<void> {
  const work = await makeTempDir('hk-bench-snap-');
  try {
    await inWorkDir(work);
  } finally {
    await removeDir(work);
  }
}

async function inWorkDir(work: string): Promise<void> {
  // At most: the source, the uploaded copy, the export's temp copy and the downloaded file of the biggest size.
  const biggest = Math.max(...SIZES_MIB);
  const fs = await statfs(work);
  const freeMiB = (fs.bavail * fs.bsize) / MIB;
  if (freeMiB < biggest * 4 + 1024) throw new Error(`need ${biggest * 4 + 1024} MiB free under ${work}, have ${freeMiB.toFixed(0)} MiB`);
  const imagesDir = path.join(work, 'images');
  await mkdir(imagesDir, { recursive: true });

  const config = shippedConfig('qemu.json');
  for (const entry of config.plugins) {
    if (entry.module === 'qemu') entry.options = { ...entry.options, accel: 'tcg', imagesDir };
    if (entry.module === 'images') entry.options = { ...entry.options, imagesDir, maxImageSizeMiB: biggest * 2 };
  }
  // Info level: the harness waits for the "listening" line; a handful of requests log little.
  const agent = await startAgent({ config: { ...config, logLevel: 'info' }, env: { HYPERKERN_QEMU_ACCEL: 'tcg', HYPERKERN_LOG_LEVEL: 'info' } });
  try {
    const rows: string[] = [];
    // Smallest first: if RSS followed the bytes, the bigger transfer would peak higher.
    for (const size of [...SIZES_MIB].sort((x, y) => x - y)) rows.push(...(await transfer(agent, work, size)));
    const section = [
      '<!-- snapshot-stream:start (written by node dist/bench/snapshot-stream.js) -->',
      '## Snapshot download and image upload: agent RSS (QEMU backend)',
      '',
      `- date: ${new Date().toISOString()}; ${os.cpus().length} CPUs; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; node ${process.version}`,
      `- agent: config/qemu.json (TCG), logs at info, one agent for all sizes (${SIZES_MIB.join(', ')} MiB); curl on 127.0.0.1; each image a qcow2 with every cluster written by qemu-io; the snapshot is of an off guest whose disk is an overlay of the uploaded image, so the download (a self-contained qcow2) is the whole image; qemu-img check accepts every download`,
      '- RSS: VmRSS of the agent process from /proc/PID/status every 100 ms (qemu-img convert runs as its own process and is not counted)',
      '',
      '| transfer | time | agent RSS before → peak |',
      '| --- | --- | --- |',
      ...rows,
      '<!-- snapshot-stream:end -->',
    ].join('\n');
    console.log(section);
    const resultsFile = path.join(repoRoot, 'bench/RESULTS.md');
    const current = await readFile(resultsFile, 'utf8');
    const marked = /<!-- snapshot-stream:start[\s\S]*?<!-- snapshot-stream:end -->/;
    await writeFile(resultsFile, marked.test(current) ? current.replace(marked, section) : `${current.trimEnd()}\n\n${section}\n`);
  } finally {
    await agent.stop();
    await removeDir(agent.dataDir);
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
