/**
 * The guest view (#/guests/ID) in real Chromium against a real agent (the
 * simulator config, in-process: a real HTTP server, WebSockets, SQLite),
 * with a token configured, so the page signs in and opens its console with
 * a ticket as a browser must: start from the page shows the job's stage and
 * the new state; a failing action shows the agent's message; the charts
 * draw rates that follow the guest (running, then suspended); the console
 * panel shows the guest's output and sends what is typed; snapshots and
 * metadata round-trip through the page (a snapshot download is a plain
 * link with a single-use download ticket, streamed to disk by the
 * browser); the tabs work from the keyboard; delete asks first.
 * Screenshots go to the OS temp dir
 * (test/support/chromium.ts).
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { waitFor } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { launchChromium, newPage, screenshot, watchPage } from '../support/chromium.js';
import { simulatorConfig } from '../support/configs.js';
import { underLoad } from '../support/load-budget.js';

const TOKEN = 'guest-view-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
/** Generous: a cold Chromium on two loaded cores. */
const UI_TIMEOUT = underLoad(30_000);
/** The simulator's start stage takes this long, so the page can show the job running. */
const START_DELAY_MS = 2500;
const DOWNLOAD_BYTES = 96 * 1024;

describe('guest view in Chromium', function () {
  this.timeout(300_000);
  const agent = suiteAgent(() => ({
    config: simulatorConfig({
      auth: { tokens: [TOKEN] },
      simulator: { delays: { start: START_DELAY_MS }, failures: { reboot: 'simulated: the guest firmware refused the reboot' }, snapshotDownloadBytes: DOWNLOAD_BYTES },
    }),
  }));
  let browser: Browser;
  let page: Page;
  let seen: ReturnType<typeof watchPage>;
  let guestId: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await agent.request(method, path, body, auth);
    expect(res.status, `${method} ${path}: ${res.text}`).to.be.lessThan(300);
    return res.body;
  };
  const tab = (name: string) => page.getByRole('tab', { name, exact: true });
  const job = (action: string, status: string) => page.locator(`.guest-job-list li[data-action="${action}"][data-status="${status}"]`).first();
  const stateBadge = (state: string) => page.locator(`[data-guest-state="${state}"]`);
  const terminalText = () => page.locator('.guest-terminal .xterm-rows').innerText();

  before(async () => {
    browser = await launchChromium();
    const created = await api('POST', '/guests?wait=10&start=false', { memory: 256, cpu: 2, disks: [{ size: 64 }], nics: [{}], metadata: { name: 'ui-guest', temp: 'to-remove' } });
    guestId = created.id;
    page = await newPage(browser, { width: 1280, height: 1000 });
    seen = watchPage(page, agent.url);
    // The token as the shell's prompt keeps it: this tab's session storage.
    await page.addInitScript((token) => sessionStorage.setItem('hyperkern.token', token), TOKEN);
    await page.goto(`${agent.url}/ui#/guests/${guestId}`);
    await stateBadge('off').waitFor({ timeout: UI_TIMEOUT });
  });
  after(async () => {
    await browser?.close();
  });

  it('offers the actions the lifecycle table allows, and start shows its job running, then the new state', async () => {
    const start = page.locator('button[data-action="start"]');
    expect(await start.getAttribute('aria-describedby'), 'an allowed action needs no explanation').to.equal(null);
    expect(await start.isEnabled(), 'start is allowed from off').to.equal(true);
    expect(await page.locator('button[data-action="shutdown"]').isDisabled(), 'shutdown needs running').to.equal(true);
    expect(await page.locator('button[data-action="shutdown"]').getAttribute('title')).to.equal('Shut down needs the guest running; it is off');
    await start.click();
    // The job's stage while it runs (the simulator's start takes START_DELAY_MS).
    await job('start', 'Running').waitFor({ timeout: UI_TIMEOUT });
    expect(await job('start', 'Running').innerText()).to.match(/running: simulator\.start/);
    await job('start', 'Complete').waitFor({ timeout: UI_TIMEOUT });
    await stateBadge('running').waitFor({ timeout: UI_TIMEOUT });
    expect((await api('GET', `/guests/${guestId}`)).state).to.equal('running');
    expect(await start.isDisabled(), 'start is not allowed from running').to.equal(true);
    // A screen reader hears why: the button's name says the states it needs.
    expect(await page.getByRole('button', { name: 'Start (needs the guest off, shutdown, suspended, crashed or error)' }).count()).to.equal(1);
    expect(await page.locator('button[data-action="shutdown"]').isEnabled()).to.equal(true);
    await screenshot(page, 'ui-guest-started');
  });

  it("shows a failed job's message", async () => {
    await page.locator('button[data-action="reboot"]').click();
    await job('reboot', 'Error').waitFor({ timeout: UI_TIMEOUT });
    expect(await job('reboot', 'Error').innerText()).to.match(/failed: .*simulated: the guest firmware refused the reboot/);
    // A change made elsewhere shows at once, with the actions it allows.
    await api('POST', `/guests/${guestId}/suspend?wait=10`);
    await stateBadge('suspended').waitFor({ timeout: UI_TIMEOUT });
    await page.locator('button[data-action="resume"]').click();
    await job('resume', 'Complete').waitFor({ timeout: UI_TIMEOUT });
    await stateBadge('running').waitFor({ timeout: UI_TIMEOUT });
  });

  it('draws CPU, network and disk rates that follow the guest: moving while it runs, zero once suspended', async () => {
    const points = async (id: string) => Number(await page.locator(`#chart-${id}`).getAttribute('data-points'));
    const latest = (id: string) => page.locator(`#chart-${id} .guest-chart-latest`).innerText();
    const pixels = (id: string) => page.locator(`#chart-${id} canvas`).evaluate((canvas: HTMLCanvasElement) => canvas.toDataURL());
    await page.waitForFunction(() => Number(document.querySelector('#chart-cpu')?.getAttribute('data-points')) >= 2, undefined, { timeout: UI_TIMEOUT });
    // The simulator's guest uses about a quarter of each vCPU while it runs (a sample that spans its resume shows less), and moves bytes on its NIC and disk.
    await page.locator('#chart-cpu .guest-chart-latest', { hasText: /^CPU \(% of its vCPUs\) (2\d|3\d)\.\d %$/ }).waitFor({ timeout: UI_TIMEOUT });
    expect(await latest('nic')).to.match(/^received \d+(\.\d)? KiB\/s, sent \d+(\.\d)? KiB\/s$/);
    expect(await latest('disk')).to.match(/^read \d+(\.\d)? KiB\/s, written \d+(\.\d)? KiB\/s$/);
    const before = { cpu: await pixels('cpu'), points: await points('cpu') };
    await page.waitForFunction((n) => Number(document.querySelector('#chart-cpu')?.getAttribute('data-points')) >= n + 2, before.points, { timeout: UI_TIMEOUT });
    expect(await pixels('cpu'), 'the CPU chart drew the new points').to.not.equal(before.cpu);
    expect(await page.locator('#chart-cpu [role="img"]').getAttribute('aria-label')).to.match(/^CPU over the last minutes: CPU \(% of its vCPUs\) \d+\.\d %$/);
    // Suspended: its counters stand still, so the rates fall to zero.
    await api('POST', `/guests/${guestId}/suspend?wait=10`);
    await page.locator('#chart-cpu .guest-chart-latest', { hasText: /\) 0\.0 %$/ }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('#chart-disk .guest-chart-latest', { hasText: 'read 0 B/s, written 0 B/s' }).waitFor({ timeout: UI_TIMEOUT });
    await screenshot(page, 'ui-guest-charts');
    await api('POST', `/guests/${guestId}/resume?wait=10`);
    await stateBadge('running').waitFor({ timeout: UI_TIMEOUT });
  });

  it('polls the metrics only while the charts are shown: not while the page is hidden, not once another tab is open', async () => {
    const asked: string[] = [];
    const count = (request: { url(): string }) => request.url().includes('/metrics/') && asked.push(request.url());
    page.on('request', count);
    try {
      const quiet = async (why: string) => {
        // Longer than two poll intervals (2 s), once a poll that had started has answered.
        await page.waitForTimeout(1000);
        const before = asked.length;
        await page.waitForTimeout(5000);
        expect(asked.length - before, `metrics requests while ${why}`).to.equal(0);
      };
      await page.waitForFunction(() => Number(document.querySelector('#chart-cpu')?.getAttribute('data-points')) >= 1, undefined, { timeout: UI_TIMEOUT });
      // The tab hidden, as the browser reports it when the user switches away.
      await page.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      await quiet('the page is hidden');
      await page.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      const resumed = asked.length;
      await waitFor(async () => (asked.length > resumed ? true : undefined), UI_TIMEOUT, 'polling to resume once the page is visible again');
      await tab('Metadata').click();
      await quiet('the Metadata tab is open');
    } finally {
      page.off('request', count);
    }
    await tab('Overview').click();
  });

  it("shows the guest's console output and sends what is typed (through a console ticket)", async () => {
    await tab('Console').click();
    await page.locator('.guest-console-status[data-open="true"]').waitFor({ timeout: UI_TIMEOUT });
    // What the guest printed before the panel opened comes from the log: its boot banner.
    await page.waitForFunction(() => /line-echo console/.test(document.querySelector('.guest-terminal .xterm-rows')?.textContent ?? ''), undefined, { timeout: UI_TIMEOUT });
    await page.locator('.guest-terminal').click();
    await page.keyboard.type('echo typed-in-chromium-42');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /^typed-in-chromium-42$/m.test((document.querySelector('.guest-terminal .xterm-rows') as HTMLElement | null)?.innerText ?? ''), undefined, { timeout: UI_TIMEOUT });
    // The guest got the bytes: its own log has the command and its answer.
    const log = await agent.request('GET', `/guests/${guestId}/console/log`, undefined, auth);
    expect(log.text).to.match(/echo typed-in-chromium-42\r?\n(\r?\n)?typed-in-chromium-42/);
    expect(await terminalText()).to.contain('sim-');
    await screenshot(page, 'ui-guest-console');
  });

  it('takes, rolls back, downloads and deletes a snapshot from the page', async () => {
    await tab('Snapshots').click();
    // A name the agent refuses: its message is shown, nothing is queued.
    await page.locator('input[name="snapshot-name"]').fill('../x');
    await page.getByRole('button', { name: 'Take snapshot' }).click();
    await page.getByRole('alert').filter({ hasText: /Take a snapshot: dest: "\.\.\/x" is not a snapshot name/ }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('input[name="snapshot-name"]').fill('before-upgrade');
    await page.getByRole('button', { name: 'Take snapshot' }).click();
    await page.locator('tr[data-snapshot="before-upgrade"]').waitFor({ timeout: UI_TIMEOUT });
    await job('createSnapshot', 'Complete').waitFor({ timeout: UI_TIMEOUT });
    expect((await api('GET', `/guests/${guestId}/snapshots`)).map((s: { id: string }) => s.id)).to.deep.equal(['before-upgrade']);
    // Rollback needs the guest off (the kernel's SNAPSHOT_LIFECYCLE): disabled while it runs.
    const rollBack = page.getByRole('button', { name: 'Roll back to before-upgrade' });
    expect(await rollBack.isDisabled()).to.equal(true);
    await api('POST', `/guests/${guestId}/poweroff?wait=10`);
    await stateBadge('off').waitFor({ timeout: UI_TIMEOUT });
    await rollBack.click();
    await job('rollbackSnapshot', 'Complete').waitFor({ timeout: UI_TIMEOUT });
    // Download as a plain link the browser follows and streams to disk: the
    // token cannot ride on it, a single-use download ticket does (the page
    // never fetches the image itself). The simulator's image, whole.
    const downloadRequests: string[] = [];
    const onRequest = (r: { url(): string; resourceType(): string }) => /\/download(\?|$)/.test(r.url()) && downloadRequests.push(`${r.resourceType()} ${r.url()}`);
    page.on('request', onRequest);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: UI_TIMEOUT }), page.getByRole('button', { name: 'Download vda of before-upgrade' }).click()]);
    page.off('request', onRequest);
    // The agent's Content-Disposition names the file (a browser prefers it to the link's own name).
    expect(download.suggestedFilename()).to.equal('before-upgrade.qcow2');
    expect(download.url()).to.match(new RegExp(`^${agent.url}/guests/${guestId}/disks/vda/snapshots/before-upgrade/download\\?ticket=[A-Za-z0-9_-]{32}$`));
    const stream = await download.createReadStream();
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const saved = Buffer.concat(chunks);
    expect(saved.length, 'the downloaded image').to.equal(DOWNLOAD_BYTES);
    const withToken = Buffer.from(await (await fetch(`${agent.url}/guests/${guestId}/disks/vda/snapshots/before-upgrade/download`, { headers: auth })).arrayBuffer());
    expect(saved.equals(withToken), 'the same bytes as a download with the token').to.equal(true);
    // The page fetched no image itself (a fetch with the token would show
    // here; a download the browser takes over raises no request event).
    expect(downloadRequests, 'requests of the download route made by the page').to.deep.equal([]);
    // The ticket was good once, so the browser's download used it: following the same link again is refused (JSON).
    const reused = await fetch(download.url());
    expect(reused.status).to.equal(401);
    expect(((await reused.json()) as { message: string }).message).to.match(/^ticket unknown, already used or expired/);
    await screenshot(page, 'ui-guest-snapshots');
    await page.getByRole('button', { name: 'Delete snapshot before-upgrade' }).click();
    await page.locator('tr[data-snapshot="before-upgrade"]').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    expect(await api('GET', `/guests/${guestId}/snapshots`)).to.deep.equal([]);
  });

  it('edits metadata as Go clients would: a changed value, a new key, a removed key ("")', async () => {
    await tab('Metadata').click();
    const value = (key: string) => page.getByLabel(`Value of ${key}`, { exact: true });
    await value('name').waitFor({ timeout: UI_TIMEOUT });
    await value('name').fill('ui-guest-renamed');
    await page.getByRole('button', { name: 'Remove temp' }).click();
    await page.getByRole('button', { name: 'Add a key' }).click();
    // The new row's key field has the focus: keyboard users type on.
    await page.waitForFunction(() => document.activeElement?.getAttribute('aria-label') === 'Key of new entry 3', undefined, { timeout: UI_TIMEOUT });
    await page.keyboard.type('owner');
    await value('owner').fill('ops team');
    await page.getByRole('button', { name: 'Save metadata' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved 3 changes.' }).waitFor({ timeout: UI_TIMEOUT });
    expect(await api('GET', `/guests/${guestId}/metadata`)).to.deep.equal({ name: 'ui-guest-renamed', owner: 'ops team' });
    // A change made elsewhere shows without a reload (the guest.changed event).
    await api('PATCH', `/guests/${guestId}/metadata`, { owner: 'night shift' });
    await page.waitForFunction(() => (document.querySelector('input[aria-label="Value of owner"]') as HTMLInputElement | null)?.value === 'night shift', undefined, { timeout: UI_TIMEOUT });
    await page.locator('h1', { hasText: 'ui-guest-renamed' }).waitFor({ timeout: UI_TIMEOUT });
  });

  it('offers migrate where the contract allows it: without a fleet the dialog asks for the target agent; a backend that cannot move says so', async () => {
    await tab('Overview').click();
    const migrate = page.locator('button[data-action="migrate"]');
    await stateBadge('off').waitFor({ timeout: UI_TIMEOUT });
    expect(await migrate.isEnabled(), 'an off guest moves cold').to.equal(true);
    await migrate.click();
    const dialog = page.getByRole('dialog', { name: `Move ${guestId} to another host` });
    // No fleet plugin (GET /fleet/hosts is 501): the target is an agent's URL and its token.
    await dialog.getByLabel('Target agent URL').waitFor({ timeout: UI_TIMEOUT });
    expect(await dialog.getByLabel('Target host').count()).to.equal(0);
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'the URL field has the focus').to.equal('migrate-url');
    await dialog.getByLabel('Target agent URL').fill(agent.url);
    await dialog.getByLabel('Its token').fill(TOKEN);
    await dialog.getByRole('button', { name: 'Move' }).click();
    const refusal = dialog.getByRole('alert');
    await refusal.waitFor({ timeout: UI_TIMEOUT });
    expect(await refusal.innerText()).to.match(/^Migrate: .*plugin "simulator", cannot move guests/);
    expect((await api('GET', `/guests/${guestId}/jobs`)).filter((j: { Action: string }) => j.Action === 'migrate'), 'nothing queued').to.deep.equal([]);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', timeout: UI_TIMEOUT });
  });

  it('moves between the tabs with the arrow keys, and asks before a delete', async () => {
    await tab('Overview').click();
    await tab('Overview').focus();
    // Preact draws after the key event: wait for the selection, then check where the focus went.
    const selected = (id: string) => page.locator(`#guest-tab-${id}[aria-selected="true"]`).waitFor({ timeout: UI_TIMEOUT });
    await page.keyboard.press('ArrowRight');
    await selected('metadata');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('guest-tab-metadata');
    await page.keyboard.press('End');
    // The guest is off: no Screen tab, Console is the last.
    await selected('console');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('guest-tab-console');
    await page.keyboard.press('Home');
    await selected('overview');
    await page.locator('button[data-action="delete"]').click();
    // The confirmation takes the focus on its safe choice; Escape cancels.
    await page.waitForFunction(() => document.activeElement?.textContent === 'Cancel', undefined, { timeout: UI_TIMEOUT });
    await page.keyboard.press('Escape');
    expect(await page.getByRole('alertdialog').count()).to.equal(0);
    await page.locator('button[data-action="delete"]').click();
    await page.locator('button[data-confirm="delete"]').click();
    // The delete event, or the 404 of a read that crossed it: either says the guest is gone.
    await page.getByRole('alert').filter({ hasText: new RegExp(`guest ${guestId} (was deleted|is not on this host: no guest with id)`) }).waitFor({ timeout: UI_TIMEOUT });
    expect((await agent.request('GET', `/guests/${guestId}`, undefined, auth)).status).to.equal(404);
    // Nothing but the agent was asked, and the page logged no error of its own.
    expect(seen.foreign, 'requests to anything but the agent').to.deep.equal([]);
    expect(
      seen.errors.filter((e) => !/Failed to load resource: the server responded with a status of (400|404|501)/.test(e)),
      'page errors (the 400 of the refused snapshot name, the 501s of the refused move and the 404s of the deleted guest aside)',
    ).to.deep.equal([]);
  });
});
