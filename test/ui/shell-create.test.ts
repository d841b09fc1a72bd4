/**
 * The web console's create, images and jobs pages in real Chromium against
 * a real agent (simulator + images plugin, in-process) and a real image
 * server on loopback: an image fetched from the page shows its transfer's
 * progress and then is listed, a file uploaded from the page shows its
 * upload progress and is stored, a guest created from the page on that
 * image boots and opens its page, the agent's refusal of a bad create is
 * shown as it said it, an image is deleted, and a running job is cancelled
 * from the jobs page.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { makeTempDir, removeDir } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { launchChromium, newPage, screenshot, watchPage } from '../support/chromium.js';
import { simulatorConfig } from '../support/configs.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';

const UI_TIMEOUT = 60_000;
const MiB = 1024 * 1024;

describe('web console: create, images and jobs in Chromium', function () {
  this.timeout(300_000);
  const agent = suiteAgent(() => ({ config: simulatorConfig() }));
  let browser: Browser;
  let page: Page;
  let server: ImageServer;
  let files: string;
  let seen: ReturnType<typeof watchPage>;

  before(async () => {
    files = await makeTempDir('hyperkern-ui-images-');
    // Raw images: bytes with no other format's signature; whole MiB.
    await writeFile(path.join(files, 'disk.raw'), Buffer.alloc(4 * MiB, 0xcd));
    server = await startImageServer(files);
    browser = await launchChromium();
    page = await newPage(browser);
    seen = watchPage(page, agent.url);
    // Deleting an image asks first; the test says yes.
    page.on('dialog', (dialog) => void dialog.accept());
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (files) await removeDir(files);
  });

  const imageRow = (id: string) => page.getByRole('row', { name: new RegExp(`^${id} `) });

  it('fetches an image from a URL with the transfer progress, then lists it', async () => {
    await page.goto(`${agent.url}/ui#/images`);
    await page.getByRole('heading', { name: 'Fetch from a URL' }).waitFor({ timeout: UI_TIMEOUT });
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Fetch' }) });
    await form.getByLabel('Image id').fill('disk-a');
    // /slow/ sends 64 KiB every 100 ms: 4 MiB take ~6 s, long enough to see progress.
    await form.getByLabel('Source URL').fill(`${server.url}/slow/disk.raw`);
    await form.getByRole('button', { name: 'Fetch' }).click();
    const transfer = page.locator('.transfer', { hasText: 'Fetch disk-a' });
    await transfer.getByText(/transferring: \d+ of 4194304 bytes/).waitFor({ timeout: UI_TIMEOUT });
    const share = await transfer.getByRole('progressbar').evaluate((bar) => (bar as HTMLProgressElement).value);
    expect(share).to.be.greaterThan(0).and.lessThan(1);
    await screenshot(page, 'ui-images-fetching');
    await transfer.getByText('fetched').waitFor({ timeout: UI_TIMEOUT });
    await imageRow('disk-a').waitFor({ timeout: UI_TIMEOUT });
    expect(await imageRow('disk-a').getByRole('cell').allInnerTexts()).to.deep.equal(['kvm', '4 MiB', 'complete', 'Delete']);
  });

  it('uploads a file with its progress and stores it', async () => {
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Upload' }) });
    await form.getByLabel('File (raw or qcow2)').setInputFiles({ name: 'up.raw', mimeType: 'application/octet-stream', buffer: Buffer.alloc(2 * MiB, 0xab) });
    await form.getByLabel('Image id').fill('disk-up');
    await form.getByRole('button', { name: 'Upload' }).click();
    const transfer = page.locator('.transfer', { hasText: 'Upload disk-up' });
    await transfer.getByText('stored').waitFor({ timeout: UI_TIMEOUT });
    expect(await transfer.getByRole('progressbar').evaluate((bar) => (bar as HTMLProgressElement).value)).to.equal(1);
    await imageRow('disk-up').waitFor({ timeout: UI_TIMEOUT });
    const stored = await agent.request('GET', '/images/disk-up');
    expect(stored.body).to.include({ id: 'disk-up', size: 2, status: 'complete' });
    await screenshot(page, 'ui-images-view');
  });

  it('deletes an image', async () => {
    await imageRow('disk-up').getByRole('button', { name: 'Delete image disk-up' }).click();
    await imageRow('disk-up').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    expect((await agent.request('GET', '/images/disk-up')).status).to.equal(404);
  });

  it('creates a VM on an image of the list, boots it and opens its page', async () => {
    await page.getByRole('link', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Create a guest' }).waitFor({ timeout: UI_TIMEOUT });
    await page.getByLabel('Name').fill('made-in-ui');
    await page.getByLabel('CPUs').fill('2');
    await page.getByLabel('Memory (MiB)').fill('384');
    await page.getByText('1 image on this host.').waitFor({ timeout: UI_TIMEOUT });
    await page.getByLabel('Disk image').selectOption('disk-a');
    await screenshot(page, 'ui-create-view');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/#\/guests\/[0-9a-f-]{36}$/, { timeout: UI_TIMEOUT });
    const id = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
    await page.getByRole('heading', { name: 'made-in-ui' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.state-running').first().waitFor({ timeout: UI_TIMEOUT });
    const guest = (await agent.request('GET', `/guests/${id}`)).body;
    expect(guest).to.include({ cpu: 2, memory: 384, state: 'running' });
    expect(guest.disks.map((d: { image: string }) => d.image)).to.deep.equal(['disk-a']);
    expect(guest.metadata.name).to.equal('made-in-ui');
  });

  it("shows the agent's refusal of a create as the agent said it", async () => {
    await page.getByRole('link', { name: 'Create' }).click();
    await page.getByLabel('Memory (MiB)').fill('9999999999');
    await page.getByRole('button', { name: 'Create' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: UI_TIMEOUT });
    expect(await alert.innerText()).to.match(/^The agent refused the guest: .*memory/);
  });

  it('cancels a running job from the jobs page', async () => {
    const slow = await agent.request('POST', '/guests', { memory: 64, disks: [{ size: 8 }], metadata: { name: 'slow', 'simulator.delay.start': '120000' } });
    expect(slow.status, slow.text).to.equal(202);
    const jobId = slow.headers.get('x-guest-job-id')!;
    await page.getByRole('link', { name: 'Jobs' }).click();
    const cancel = page.getByRole('button', { name: `Cancel create job ${jobId.slice(0, 8)}` });
    await cancel.waitFor({ timeout: UI_TIMEOUT });
    await cancel.click();
    await page.getByRole('status').filter({ hasText: `create ${jobId.slice(0, 8)}` }).waitFor({ timeout: UI_TIMEOUT });
    const row = page.locator('.vbox [role="row"]', { has: cancel }).or(page.locator('.vbox [role="row"]', { hasText: 'cancelled' }));
    await row.filter({ hasText: 'Error' }).first().waitFor({ timeout: UI_TIMEOUT });
    const job = (await agent.request('GET', `/jobs/${jobId}`)).body;
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.match(/cancelled/);
    expect(await cancel.count(), 'no cancel button on an ended job').to.equal(0);
  });

  it('loaded nothing from anywhere but the agent', () => {
    expect(seen.foreign).to.deep.equal([]);
    expect(seen.errors.filter((e) => !/status of (400|409)/.test(e)), 'page errors (the refused create logs its 400)').to.deep.equal([]);
  });
});
