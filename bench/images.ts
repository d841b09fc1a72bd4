/**
 * Image transfer benchmark: the agent's fetch throughput against curl of the
 * same file from the same loopback server into the same folder, and the
 * agent's RSS while it fetches and receives an upload of a 2 GiB image (it
 * must stay flat: bytes are streamed, never collected).
 *
 *   npm run build && flock /tmp/hk-heavy.lock node dist/bench/images.js [--size-mib 2048]
 *
 * Writes its section of bench/RESULTS.md (between the images markers).
 */
import { execFile, spawn } from 'node:child_process';
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { rssOf } from './support/processes.js';
import { makeTempDir, removeDir, repoRoot, startAgent } from '../test/support/agent.js';
import { simulatorConfig, withImages } from '../test/support/configs.js';
import { startImageServer } from '../test/support/image-server.js';

const exec = promisify(execFile);
const MIB = 1024 * 1024;
const sizeArg = process.argv.indexOf('--size-mib');
const SIZE_MIB = sizeArg > 0 ? Number(process.argv[sizeArg + 1]) : 2048;

/** A raw image of real (non-zero, incompressible-looking) bytes, written once. */
async function makeImage(file: string, sizeMiB: number): Promise<void> {
  const handle = await open(file, 'w');
  const block = Buffer.alloc(4 * MIB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let written = 0; written < sizeMiB; written += 4) {
    block.writeUInt32LE(written, 0);
    await handle.write(block);
  }
  await handle.close();
}

/** Samples the RSS of `pid` every 100 ms while `work` runs. */
async function sampled<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; before: number; peak: number }> {
  const before = (await rssOf(pid))?.rss ?? NaN;
  let peak = before;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const now = (await rssOf(pid))?.rss;
      if (now !== undefined && now > peak) peak = now;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const result = await work();
    return { result, before, peak };
  } finally {
    running = false;
    await sampler;
  }
}

function curlTo(url: string, out: string): Promise<number> {
  const started = process.hrtime.bigint();
  return exec('curl', ['-sS', '--fail', '-o', out, url], { timeout: 600_000 }).then(() => Number(process.hrtime.bigint() - started) / 1e6);
}

function curlUpload(url: string, file: string): Promise<{ ms: number; status: string }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-T', file, url]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', () => resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, status: out.trim() }));
  });
}

const mibs = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;
const rate = (bytes: number, ms: number) => `${(bytes / MIB / (ms / 1000)).toFixed(0)} MiB/s`;

async function main(): Promise<void> {
  const work = await makeTempDir('hk-bench-images-');
  const served = path.join(work, 'served');
  const imagesDir = path.join(work, 'images');
  await exec('mkdir', ['-p', served, imagesDir]);
  const file = path.join(served, 'big.raw');
  await makeImage(file, SIZE_MIB);
  const bytes = (await stat(file)).size;
  const server = await startImageServer(served);
  const config = withImages(simulatorConfig({ accessLog: false }), { imagesDir, maxImageSizeMiB: SIZE_MIB * 2 });
  config.logLevel = 'warn';
  const agent = await startAgent({ config });
  try {
    const rows: string[] = [];
    // curl first and last, the agent between, so page-cache warmth favours neither.
    const curl1 = await curlTo(`${server.url}/big.raw`, path.join(imagesDir, '.curl-1'));
    const fetch = await sampled(agent.pid, async () => {
      const started = process.hrtime.bigint();
      const res = await agent.request('POST', '/images?wait=600', { id: 'fetched', source: `${server.url}/big.raw` });
      if (res.status !== 200) throw new Error(`fetch answered ${res.status}: ${res.text}`);
      return Number(process.hrtime.bigint() - started) / 1e6;
    });
    const curl2 = await curlTo(`${server.url}/big.raw`, path.join(imagesDir, '.curl-2'));
    await rm(path.join(imagesDir, '.curl-1'));
    await rm(path.join(imagesDir, '.curl-2'));
    const curlMs = Math.min(curl1, curl2);
    const upload = await sampled(agent.pid, () => curlUpload(`${agent.url}/images/uploaded`, file));
    if (upload.result.status !== '201') throw new Error(`upload answered ${upload.result.status}`);

    rows.push(`| fetch of a ${mibs(bytes)} raw image from a loopback HTTP server | time (incl. sha-less qemu-img check, fsync, rename) | ${(fetch.result / 1000).toFixed(1)} s (${rate(bytes, fetch.result)}) | ${(curlMs / 1000).toFixed(1)} s (${rate(bytes, curlMs)}), curl -o into the same folder, best of 2 | ${(curlMs / fetch.result).toFixed(2)}× curl's speed |`);
    rows.push(`|  | agent RSS before → peak during the fetch | ${mibs(fetch.before)} → ${mibs(fetch.peak)} (+${mibs(fetch.peak - fetch.before)}) | | flat (growth ≪ image) |`);
    rows.push(`| upload PUT /images/{id} of the same ${mibs(bytes)} (curl -T) | time | ${(upload.result.ms / 1000).toFixed(1)} s (${rate(bytes, upload.result.ms)}) | | |`);
    rows.push(`|  | agent RSS before → peak during the upload | ${mibs(upload.before)} → ${mibs(upload.peak)} (+${mibs(upload.peak - upload.before)}) | | flat (growth ≪ image) |`);
    const section = [
      '<!-- images:start (written by node dist/bench/images.js) -->',
      '## Image transfers',
      '',
      `- date: ${new Date().toISOString()}; ${os.cpus().length} CPUs; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
      '- agent: simulator + images plugin, access log off; server: node:http on 127.0.0.1 (test/support/image-server.ts); images folder on the same file system for both',
      '',
      '| case | metric | hyperkern | curl (same run) | ratio / target |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
      '<!-- images:end -->',
    ].join('\n');
    console.log(section);
    const resultsFile = path.join(repoRoot, 'bench/RESULTS.md');
    const current = await readFile(resultsFile, 'utf8');
    const marked = /<!-- images:start[\s\S]*?<!-- images:end -->/;
    await writeFile(resultsFile, marked.test(current) ? current.replace(marked, section) : `${current.trimEnd()}\n\n${section}\n`);
  } finally {
    await agent.stop();
    await removeDir(agent.dataDir);
    await server.close();
    await removeDir(work);
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
