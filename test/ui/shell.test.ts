/**
 * The web console's shell in real Chromium against a real agent (the
 * simulator config, in-process: a real HTTP server and SQLite file): the
 * host view lists the guests, a guest created through the API appears
 * without a reload, changes and deletions follow live, the filter and sort
 * work from the keyboard, the jobs and events pages show what happened,
 * and nothing is loaded from anywhere but the agent. Screenshots go to the
 * OS temp dir (test/support/chromium.ts).
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { suiteAgent } from '../support/agent-hooks.js';
import { launchChromium, newPage, screenshot, watchPage } from '../support/chromium.js';
import { simulatorConfig } from '../support/configs.js';

/** Generous: a cold Chromium on two loaded cores. */
const UI_TIMEOUT = 60_000;

describe('web console shell in Chromium', function () {
  this.timeout(240_000);
  const agent = suiteAgent(() => ({ config: simulatorConfig() }));
  let browser: Browser;
  let page: Page;
  let seen: ReturnType<typeof watchPage>;

  const create = async (name: string, extra: Record<string, unknown> = {}) => {
    const res = await agent.request('POST', '/guests?wait=10', { memory: 256, cpu: 2, disks: [{ size: 64 }], nics: [{}], metadata: { name }, ...extra });
    expect(res.status, res.text).to.equal(200);
    return res.body.id as string;
  };
  const row = (name: string) => page.locator('.vbox [role="row"]', { has: page.getByRole('link', { name, exact: true }) });

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  it('lists the guests that exist when the page opens, with state, CPUs and memory', async () => {
    await create('alpha');
    await create('bravo', { cpu: 3, memory: 768 });
    page = await newPage(browser);
    seen = watchPage(page, agent.url);
    await page.goto(`${agent.url}/ui`);
    await row('bravo').waitFor({ timeout: UI_TIMEOUT });
    const cells = await row('bravo').getByRole('cell').allInnerTexts();
    expect(cells.slice(0, 5)).to.deep.equal(['bravo', 'running', '3', '768 MiB', 'vm']);
    expect(await row('alpha').getByRole('cell').nth(1).innerText()).to.equal('running');
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: UI_TIMEOUT });
    // Capacity: 2 + 3 CPUs allotted, of the machine's.
    await page.getByText(/^5 of \d+( \(overcommitted\))?$/).waitFor({ timeout: UI_TIMEOUT });
    expect(await page.locator('.plugins').innerText()).to.match(/simulator: healthy/);
    await screenshot(page, 'ui-host-view');
  });

  it('shows a guest created through the API without a reload, then its changes and its deletion', async () => {
    const id = await create('charlie');
    // It may be drawn first as it was created (creating), then as its create job left it.
    await row('charlie').getByText('running', { exact: true }).waitFor({ timeout: UI_TIMEOUT });
    const suspended = await agent.request('POST', `/guests/${id}/suspend?wait=10`);
    expect(suspended.status, suspended.text).to.equal(200);
    await row('charlie').getByText('suspended', { exact: true }).waitFor({ timeout: UI_TIMEOUT });
    const patched = await agent.request('PATCH', `/guests/${id}/metadata`, { name: 'charlie-2' });
    expect(patched.status, patched.text).to.equal(200);
    await row('charlie-2').waitFor({ timeout: UI_TIMEOUT });
    expect(await row('charlie').count(), 'the old name is gone, not left as a stale row').to.equal(0);
    const removed = await agent.request('DELETE', `/guests/${id}?wait=10`);
    expect(removed.status, removed.text).to.equal(200);
    await row('charlie-2').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
  });

  it('filters and sorts from the keyboard', async () => {
    const filter = page.getByRole('searchbox');
    await filter.focus();
    await page.keyboard.type('alp');
    await page.getByText('1 of 2 guests').waitFor({ timeout: UI_TIMEOUT });
    expect(await page.locator('.vbox [role="row"]').count()).to.equal(1);
    await filter.fill('');
    // Sort by memory, descending: the second press on the header's button reverses it.
    const memory = page.getByRole('button', { name: /^Memory/ });
    await memory.focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('[aria-sort="descending"]')?.textContent?.startsWith('Memory'), undefined, { timeout: UI_TIMEOUT });
    const names = await page.locator('.vbox [role="row"] .name').allInnerTexts();
    expect(names).to.deep.equal(['bravo', 'alpha']);
  });

  it('shows the jobs and the event log, and the guest page for a row', async () => {
    await page.getByRole('link', { name: 'Jobs' }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor({ timeout: UI_TIMEOUT });
    // charlie's suspend and delete happened while the page was open: their jobs are listed.
    await page.locator('.vbox [role="row"]', { hasText: 'suspend' }).first().waitFor({ timeout: UI_TIMEOUT });
    await screenshot(page, 'ui-jobs-view');
    await page.getByRole('link', { name: 'Events' }).click();
    await page.locator('.vbox [role="row"]', { hasText: 'guest.deleted' }).first().waitFor({ timeout: UI_TIMEOUT });
    await screenshot(page, 'ui-events-view');
    await page.getByRole('link', { name: 'Guests' }).click();
    await page.getByRole('link', { name: 'alpha', exact: true }).click();
    await page.getByRole('heading', { name: 'alpha' }).waitFor({ timeout: UI_TIMEOUT });
    expect(page.url()).to.match(/\/ui#\/guests\/[0-9a-f-]{36}$/);
  });

  it('loaded nothing from anywhere but the agent and logged no error', async () => {
    expect(seen.foreign, 'requests to anything but the agent').to.deep.equal([]);
    expect(seen.errors, 'page errors').to.deep.equal([]);
  });
});
