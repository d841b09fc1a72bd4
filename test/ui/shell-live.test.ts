/**
 * The web console where the agent is not simply there: with tokens it asks
 * for one, refuses a wrong one with the agent's reason and keeps a good one
 * for the tab's session; and an agent restarted under the open page is
 * reconnected to with Last-Event-ID, so what changed while the page was cut
 * off (a guest created, one deleted) shows without a reload and without a
 * stale row. Real Chromium, real agents (the restart uses agent processes
 * on one data dir and one port).
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { agentsPerTest } from '../support/agent-hooks.js';
import { launchChromium, newPage, screenshot } from '../support/chromium.js';
import { simulatorConfig } from '../support/configs.js';
import { freePort } from '../support/free-port.js';

const UI_TIMEOUT = 60_000;
const TOKEN = 'ui-live-token-0123456789abcdef';

describe('web console shell: auth and reconnects in Chromium', function () {
  this.timeout(300_000);
  const agents = agentsPerTest();
  let browser: Browser;

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  const row = (page: Page, name: string) => page.locator('.vbox [role="row"]', { has: page.getByRole('link', { name, exact: true }) });

  it('asks for the token, refuses a wrong one with the reason, and keeps a good one for the tab', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig({ auth: { tokens: [TOKEN] } }) });
    const made = await agent.request('POST', '/guests?wait=10', { memory: 128, disks: [{ size: 8 }], metadata: { name: 'secret-guest' } }, { Authorization: `Bearer ${TOKEN}` });
    expect(made.status, made.text).to.equal(200);
    const page = await newPage(browser);
    await page.goto(`${agent.url}/ui`);
    const field = page.getByLabel('Bearer token');
    await field.waitFor({ timeout: UI_TIMEOUT });
    expect(await page.getByRole('heading', { name: 'This agent needs a token' }).count()).to.equal(1);
    expect(await row(page, 'secret-guest').count(), 'nothing listed before a token').to.equal(0);

    await field.fill('not-the-token-at-all');
    await page.keyboard.press('Enter');
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: UI_TIMEOUT });
    expect(await alert.innerText()).to.equal('The agent refused the token: invalid bearer token');
    expect(await page.evaluate(() => sessionStorage.getItem('hyperkern.token')), 'a refused token is not kept').to.equal(null);
    await screenshot(page, 'ui-token-refused');

    await page.getByLabel('Bearer token').fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await row(page, 'secret-guest').waitFor({ timeout: UI_TIMEOUT });
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: UI_TIMEOUT });
    expect(await page.evaluate(() => sessionStorage.getItem('hyperkern.token'))).to.equal(TOKEN);
    // A reload in the same tab keeps the session's token: no prompt.
    await page.reload();
    await row(page, 'secret-guest').waitFor({ timeout: UI_TIMEOUT });
    expect(await page.getByLabel('Bearer token').count()).to.equal(0);
    // Another tab (a new context) has no token: it asks.
    const other = await newPage(browser);
    await other.goto(`${agent.url}/ui`);
    await other.getByLabel('Bearer token').waitFor({ timeout: UI_TIMEOUT });
    await other.context().close();
    // Forgetting the token returns to the prompt and clears it.
    await page.getByRole('button', { name: 'Forget token' }).click();
    await page.getByLabel('Bearer token').waitFor({ timeout: UI_TIMEOUT });
    expect(await page.evaluate(() => sessionStorage.getItem('hyperkern.token'))).to.equal(null);
    await page.context().close();
  });

  it('reconnects after the agent restarts and catches up on what changed while it was away, without a reload', async () => {
    const port = await freePort();
    const listen = ['--listen', `127.0.0.1:${port}`];
    const first = await agents.spawn({ config: simulatorConfig(), args: listen });
    const keep = await first.request('POST', '/guests?wait=10', { memory: 128, disks: [{ size: 8 }], metadata: { name: 'stays' } });
    const doomed = await first.request('POST', '/guests?wait=10', { memory: 128, disks: [{ size: 8 }], metadata: { name: 'doomed' } });
    expect(keep.status, keep.text).to.equal(200);
    expect(doomed.status, doomed.text).to.equal(200);

    const page = await newPage(browser);
    await page.goto(`${first.url}/ui`);
    await row(page, 'doomed').waitFor({ timeout: UI_TIMEOUT });
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: UI_TIMEOUT });
    // Marks this document: a reload would lose it.
    await page.evaluate(() => document.body.setAttribute('data-test-mark', 'same-document'));

    expect(await first.stop()).to.equal(0);
    await page.getByRole('status').filter({ hasText: 'Reconnecting' }).waitFor({ timeout: UI_TIMEOUT });
    await screenshot(page, 'ui-reconnecting');

    // Changes the page cannot see live: made through an agent on the same
    // data dir but another port, which then stops again.
    const aside = await agents.spawn({ config: simulatorConfig(), dataDir: first.dataDir });
    const created = await aside.request('POST', '/guests?wait=10', { memory: 128, disks: [{ size: 8 }], metadata: { name: 'made-while-away' } });
    expect(created.status, created.text).to.equal(200);
    const removed = await aside.request('DELETE', `/guests/${doomed.body.id}?wait=10`);
    expect(removed.status, removed.text).to.equal(200);
    expect(await aside.stop()).to.equal(0);

    // The agent is back on the page's port: the page resumes with Last-Event-ID.
    await agents.spawn({ config: simulatorConfig(), dataDir: first.dataDir, args: listen });
    await row(page, 'made-while-away').waitFor({ timeout: UI_TIMEOUT });
    await row(page, 'doomed').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: UI_TIMEOUT });
    expect(await row(page, 'stays').count()).to.equal(1);
    expect(await page.evaluate(() => document.body.getAttribute('data-test-mark')), 'the page was not reloaded').to.equal('same-document');
    await page.context().close();
  });

  it('re-lists when the agent comes back on another data dir (reset): no row of the old one is left', async () => {
    const port = await freePort();
    const listen = ['--listen', `127.0.0.1:${port}`];
    const first = await agents.spawn({ config: simulatorConfig(), args: listen });
    for (const name of ['old-1', 'old-2']) {
      const made = await first.request('POST', '/guests?wait=10', { memory: 128, disks: [{ size: 8 }], metadata: { name } });
      expect(made.status, made.text).to.equal(200);
    }
    const page = await newPage(browser);
    await page.goto(`${first.url}/ui`);
    await row(page, 'old-2').waitFor({ timeout: UI_TIMEOUT });
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: UI_TIMEOUT });
    expect(await first.stop()).to.equal(0);
    // Another data dir: the page's Last-Event-ID was never issued there, so the agent answers `reset`.
    const second = await agents.spawn({ config: simulatorConfig(), args: listen });
    const made = await second.request('POST', '/guests?wait=10', { memory: 128, disks: [{ size: 8 }], metadata: { name: 'new-1' } });
    expect(made.status, made.text).to.equal(200);
    await row(page, 'new-1').waitFor({ timeout: UI_TIMEOUT });
    await row(page, 'old-1').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    expect(await row(page, 'old-2').count()).to.equal(0);
    expect(await page.getByText('1 of 1 guests').count()).to.equal(1);
    await page.context().close();
  });
});
