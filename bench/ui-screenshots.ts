/**
 * Regenerates the screenshots in docs/ (docs/ui.md): a real etcd, two
 * agents (simulator config with the fleet plugin, host-a and host-b), a
 * few dozen guests in several states, two images and their jobs, then each
 * view of the shell in Debian's headless Chromium, saved as
 * docs/ui-VIEW.png (1200x720, small PNGs); the guest view's own screenshots
 * (docs/ui-guest*.png) come from its author's script. Not a benchmark: it lives here
 * beside bench/ui.ts because it drives the same browser the same way.
 *
 *   npm run build && node dist/bench/ui-screenshots.js
 */
import path from 'node:path';
import type { Page } from 'playwright-core';
import { removeDir, repoRoot, startAgent, type RunningAgent } from '../test/support/agent.js';
import { launchChromium, newPage } from '../test/support/chromium.js';
import { simulatorConfig } from '../test/support/configs.js';
import { startEtcd } from '../test/support/etcd-server.js';

const VIEWPORT = { width: 1200, height: 720 };
const NAMES = ['web', 'db', 'cache', 'build', 'ci-runner', 'mail', 'dns', 'proxy', 'search', 'queue'];

function fleetConfig(endpoint: string, hostId: string, capacity: Record<string, number>): object {
  return {
    ...simulatorConfig(),
    plugins: [
      ...simulatorConfig().plugins,
      { module: 'fleet', options: { etcd: { endpoints: [endpoint], prefix: '/hyperkern-docs', leaseTtlSeconds: 10, callTimeoutMs: 3000 }, hostId, metadataKeys: ['name'], capacity } },
    ],
  };
}

async function populate(agent: RunningAgent): Promise<void> {
  for (let i = 0; i < 36; i++) {
    const name = `${NAMES[i % NAMES.length]}-${String(Math.floor(i / NAMES.length) + 1).padStart(2, '0')}`;
    const start = i % 5 !== 3;
    const res = await agent.request('POST', `/guests?wait=10${start ? '' : '&start=false'}`, {
      memory: [512, 1024, 2048, 4096][i % 4],
      cpu: [1, 2, 4][i % 3],
      disks: [{ size: 2048 }],
      nics: [{}],
      metadata: { name },
    });
    if (res.status !== 200) throw new Error(`create ${name}: ${res.status} ${res.text}`);
    if (i % 7 === 2) await agent.request('POST', `/guests/${res.body.id}/suspend?wait=10`);
    if (i % 9 === 4) await agent.request('POST', `/guests/${res.body.id}/shutdown?wait=10`);
  }
  for (const [id, mib] of [
    ['debian-12', 4],
    ['alpine-3.20', 2],
  ] as const) {
    const res = await fetch(`${agent.url}/images/${id}`, { method: 'PUT', body: Buffer.alloc(mib * 1024 * 1024, 0xcd) });
    if (res.status !== 201) throw new Error(`upload ${id}: ${res.status} ${await res.text()}`);
  }
}

async function shoot(page: Page, name: string): Promise<void> {
  // Let the last frame settle (fonts, the stream's state).
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(repoRoot, 'docs', `ui-${name}.png`) });
  console.log(`docs/ui-${name}.png`);
}

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const agents: RunningAgent[] = [];
  const browser = await launchChromium();
  try {
    const a = await startAgent({ config: fleetConfig(etcd.endpoint, 'host-a', { cpus: 96, memoryMiB: 196608 }), env: { HYPERKERN_LOG_LEVEL: 'info' } });
    agents.push(a);
    agents.push(await startAgent({ config: fleetConfig(etcd.endpoint, 'host-b', { cpus: 32, memoryMiB: 131072 }), env: { HYPERKERN_LOG_LEVEL: 'info' } }));
    await populate(a);
    const page = await newPage(browser, VIEWPORT);
    await page.goto(`${a.url}/ui`);
    await page.getByText('36 of 36 guests').waitFor({ timeout: 60_000 });
    await shoot(page, 'host');
    // Events arrive while the page is open: a few actions for the log and the jobs.
    const guests = (await a.request('GET', '/guests')).body as Array<{ id: string; state: string }>;
    for (const g of guests.filter((g) => g.state === 'running').slice(0, 4)) await a.request('POST', `/guests/${g.id}/reboot?wait=10`);
    await page.goto(`${a.url}/ui#/create`);
    await page.getByText('2 images on this host.').waitFor({ timeout: 60_000 });
    await page.getByLabel('Name').fill('web-04');
    await page.getByLabel('Disk image').selectOption('debian-12');
    await shoot(page, 'create');
    await page.goto(`${a.url}/ui#/images`);
    await page.getByRole('row', { name: /^debian-12 / }).waitFor({ timeout: 60_000 });
    await shoot(page, 'images');
    await page.goto(`${a.url}/ui#/jobs`);
    await page.locator('.vbox [role="row"]').first().waitFor({ timeout: 60_000 });
    await shoot(page, 'jobs');
    await page.goto(`${a.url}/ui#/events`);
    await page.locator('.vbox [role="row"]', { hasText: 'job.completed' }).first().waitFor({ timeout: 60_000 });
    await shoot(page, 'events');
    await page.goto(`${a.url}/ui#/fleet`);
    await page.getByRole('link', { name: /host-b/ }).waitFor({ timeout: 60_000 });
    await shoot(page, 'fleet');
  } finally {
    await browser.close();
    for (const agent of agents) {
      await agent.stop();
      await removeDir(agent.dataDir);
    }
    await etcd.dispose();
  }
}

await main();
