/**
 * Migrate from the guest view, in real Chromium, with real things only:
 * two agents running the tiny guest's QEMU under TCG, hosts of a fleet on a
 * real etcd, a token configured on both. The page's *Migrate…* dialog lists
 * the fleet's other host with what it has free; a move capped to 1 MiB/s
 * shows its phase and bytes live in the job list and is cancelled from
 * there (the guest goes on running on the source, nothing on the target);
 * a wrong token for an agent given by URL is refused in the dialog with the
 * agent's reason (a 400: the target's 401 is not passed on as the source's); then the move runs to its end, the page says where the
 * guest went and links to the target's own console, which shows it
 * running. One test: the real move is heavy (run it alone, through the
 * heavy lock). Screenshots go to the OS temp dir (test/support/chromium.ts).
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { launchChromium, newPage, screenshot, watchPage } from '../support/chromium.js';
import { tcgQemuConfig } from '../support/configs.js';
import { startEtcd, type EtcdServer } from '../support/etcd-server.js';
import { FIRST_BOOT_MS, underLoad } from '../support/load-budget.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { disposeQemuTestAgent } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';
import { testPrefix } from '../fleet/world.js';

const TOKEN = 'guest-migrate-ui-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
const UI_TIMEOUT = underLoad(60_000);
/** A whole live move of the tiny guest under TCG on a loaded machine. */
const MOVE_TIMEOUT = underLoad(300_000);

describe('migrate from the guest view in Chromium (two agents, QEMU under TCG, etcd)', function () {
  this.timeout(FIRST_BOOT_MS + 900_000);
  let etcd: EtcdServer;
  let world: QemuWorld;
  let a: RunningAgent | undefined;
  let b: RunningAgent | undefined;
  let browser: Browser | undefined;
  const prefix = testPrefix();

  const fleetConfig = (hostId: string) => {
    const config = tcgQemuConfig(world.imagesDir) as { plugins: object[]; auth?: object };
    config.auth = { tokens: [TOKEN] };
    config.plugins.push({
      module: 'fleet',
      options: { etcd: { endpoints: [etcd.endpoint], prefix, leaseTtlSeconds: 4, callTimeoutMs: 2000 }, hostId, capacity: { cpus: 16, memoryMiB: 32768 }, peerToken: TOKEN },
    });
    return config;
  };

  before(async function () {
    this.timeout(600_000);
    etcd = await startEtcd();
    world = await QemuWorld.create();
    const env = { HYPERKERN_QEMU_ACCEL: 'tcg' };
    [a, b] = await Promise.all([startAgent({ config: fleetConfig('ui-mig-a'), env }), startAgent({ config: fleetConfig('ui-mig-b'), env })]);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await Promise.all([disposeQemuTestAgent(a), disposeQemuTestAgent(b)]);
    await etcd?.dispose();
    await world?.dispose();
  });

  it('lists the fleet host, shows the move live, cancels it, refuses a wrong token, then moves the guest and links to it on the target', async () => {
    const created = await a!.request('POST', '/guests?wait=300', { memory: 128, cpu: 1, disks: [{ size: 16 }], metadata: { ...world.tinyBoot, name: 'tiny-mover' } }, auth);
    expect(created.status, created.text).to.equal(200);
    const id: string = created.body.id;
    await waitFor(async () => (await a!.request('GET', `/guests/${id}/console/log`, undefined, auth)).text.includes(INIT_REACHED) || undefined, FIRST_BOOT_MS, 'the tiny guest to reach init');
    // Both hosts are in etcd before the dialog reads the fleet.
    await waitFor(async () => ((await a!.request('GET', '/fleet/hosts', undefined, auth)).body.hosts?.length === 2 ? true : undefined), UI_TIMEOUT, 'both hosts in the fleet');

    const page: Page = await newPage(browser!, { width: 1280, height: 1000 });
    const seen = watchPage(page, a!.url);
    // The token as the shell's prompt keeps it, on every origin this tab opens (a's and b's consoles).
    await page.addInitScript((token) => sessionStorage.setItem('hyperkern.token', token), TOKEN);
    await page.goto(`${a!.url}/ui#/guests/${id}`);
    await page.locator('[data-guest-state="running"]').waitFor({ timeout: UI_TIMEOUT });
    const migrate = page.locator('button[data-action="migrate"]');
    expect(await migrate.isEnabled(), 'a running guest may move').to.equal(true);

    // The dialog: the fleet's other host, with what it has free; this host is not offered.
    await migrate.click();
    const dialog = page.getByRole('dialog', { name: `Move ${id} to another host` });
    const hostPicker = dialog.getByLabel('Target host');
    await hostPicker.waitFor({ timeout: UI_TIMEOUT });
    expect(await hostPicker.locator('option').allInnerTexts()).to.deep.equal(['ui-mig-b: 16 CPUs, 32768 MiB free']);
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'the picker has the focus').to.equal('migrate-host');
    // Capped to 1 MiB/s, so the copy lasts while the page is read and the move cancelled.
    await dialog.getByLabel('Bandwidth cap').fill('1');
    await dialog.getByRole('button', { name: 'Move' }).click();
    await dialog.waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    const running = page.locator('.guest-job-list li[data-action="migrate"][data-status="Running"]').first();
    await running.waitFor({ timeout: UI_TIMEOUT });
    const progress = running.locator('.job-progress');
    await progress.filter({ hasText: /sent, .* left of / }).waitFor({ timeout: UI_TIMEOUT });
    expect(await progress.innerText()).to.match(new RegExp(`^moving to ${b!.url.replace(/[.]/g, '\\.')}: (disks|memory), [\\d.]+ (B|KiB|MiB) sent, [\\d.]+ (B|KiB|MiB) left of [\\d.]+ (KiB|MiB)$`));
    const bar = running.locator('progress');
    expect(Number(await bar.getAttribute('max')), 'the progress bar counts the bytes').to.be.greaterThan(0);
    const firstText = await progress.innerText();
    await page.waitForFunction((before) => {
      const now = document.querySelector('.guest-job-list li[data-action="migrate"][data-status="Running"] .job-progress')?.textContent;
      return now !== undefined && now !== before;
    }, firstText, { timeout: UI_TIMEOUT });
    await screenshot(page, 'ui-guest-migrating');

    await running.getByRole('button', { name: 'Cancel migrate' }).click();
    const cancelled = page.locator('.guest-job-list li[data-action="migrate"][data-status="Error"]').first();
    await cancelled.waitFor({ timeout: MOVE_TIMEOUT });
    expect(await cancelled.innerText()).to.match(/failed: cancelled/);
    expect((await a!.request('GET', `/guests/${id}`, undefined, auth)).body.state, 'still running on the source').to.equal('running');
    expect((await b!.request('GET', `/guests/${id}`, undefined, auth)).status, 'nothing on the target').to.equal(404);
    await page.locator('[data-guest-state="running"]').waitFor({ timeout: UI_TIMEOUT });

    // By URL with a wrong token: the agent asks the target first; its refusal is the dialog's answer, nothing is queued.
    const jobsBefore = (await a!.request('GET', `/guests/${id}/jobs`, undefined, auth)).body.length;
    await migrate.click();
    await dialog.getByLabel('An agent outside the fleet (by its URL)').check();
    await dialog.getByLabel('Target agent URL').fill(b!.url);
    await dialog.getByLabel('Its token').fill('not-the-token-of-b-0123456789');
    await dialog.getByRole('button', { name: 'Move' }).click();
    const refusal = dialog.getByRole('alert');
    await refusal.waitFor({ timeout: UI_TIMEOUT });
    // A 400 from the source (never the target's 401 passed on: the page would take its own token for wrong).
    expect(await refusal.innerText()).to.match(/^Migrate: the target agent does not accept the token given for it \("token"\): it answered 401 \(invalid bearer token\)$/);
    expect(await page.getByText('This agent needs a token').count(), 'no token prompt').to.equal(0);
    const direct = await a!.request('POST', `/guests/${id}/migrate?wait=0`, { url: b!.url, token: 'not-the-token-of-b-0123456789' }, auth);
    expect(direct.status, direct.text).to.equal(400);
    expect((await a!.request('GET', `/guests/${id}/jobs`, undefined, auth)).body.length, 'no job queued').to.equal(jobsBefore);

    // The real move, by host, uncapped; the page says where the guest went and links there.
    await dialog.getByLabel('An agent outside the fleet (by its URL)').uncheck();
    await dialog.getByLabel('Target host').selectOption('ui-mig-b');
    await dialog.getByRole('button', { name: 'Move' }).click();
    await dialog.waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    const moved = page.getByRole('alert').filter({ hasText: new RegExp(`guest ${id} is no longer on this host: it moved to host ui-mig-b \\(${b!.url.replace(/[.]/g, '\\.')}\\)`) });
    await moved.waitFor({ timeout: MOVE_TIMEOUT });
    await screenshot(page, 'ui-guest-moved');
    expect((await b!.request('GET', `/guests/${id}`, undefined, auth)).body.state).to.equal('running');
    expect((await a!.request('GET', `/guests/${id}`, undefined, auth)).status).to.equal(404);
    const link = page.getByRole('link', { name: 'Open it on ui-mig-b' });
    expect(await link.getAttribute('href')).to.equal(`${b!.url}/ui#/guests/${id}`);
    await link.click();
    await page.waitForURL(`${b!.url}/ui#/guests/${id}`, { timeout: UI_TIMEOUT });
    await page.locator('[data-guest-state="running"]').waitFor({ timeout: UI_TIMEOUT });
    await page.locator('h1', { hasText: 'tiny-mover' }).waitFor({ timeout: UI_TIMEOUT });
    expect(
      seen.errors.filter((e) => !/Failed to load resource: the server responded with a status of (400|404)/.test(e)),
      'page errors (the refused move and the 404s of the moved guest aside)',
    ).to.deep.equal([]);
    await page.context().close();
  });
});
