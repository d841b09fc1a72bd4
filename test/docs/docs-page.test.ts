/**
 * GET /docs in a real browser: Debian's headless Chromium (driven by
 * playwright-core) opens the page, waits for Swagger UI to render the
 * document, checks the operations are listed, that no request left the
 * agent (no CDN), and saves a screenshot in test-artifacts/.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type BrowserContext } from 'playwright-core';
import { makeTempDir, removeDir, repoRoot } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts');

describe('GET /docs in headless Chromium', function () {
  // A cold Chromium on a loaded 2-core machine takes seconds to start and render.
  this.timeout(180000);
  const agent = suiteAgent(() => ({ config: simulatorConfig({ auth: { tokens: ['docs-test-token-0123456789'] } }) }));
  let browser: BrowserContext;
  let profile: string;

  before(async () => {
    profile = await makeTempDir('hyperkern-chromium-');
    // A fresh profile per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1280, height: 2400 },
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    if (profile) await removeDir(profile);
  });

  it('renders every operation from the agent alone and saves a screenshot', async () => {
    const page = await browser.newPage();
    const foreign: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(agent.url)) foreign.push(request.url());
    });
    const failed: string[] = [];
    page.on('requestfailed', (request) => failed.push(request.url()));
    await page.goto(`${agent.url}/docs`, { waitUntil: 'load' });
    // Swagger UI renders one .opblock per operation once it has fetched /openapi.json.
    await page.waitForSelector('.opblock', { timeout: 60000 });
    const operations = await page.$$eval('.opblock', (blocks) =>
      blocks.map((b) => `${b.querySelector('.opblock-summary-method')?.textContent?.trim()} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`),
    );
    for (const expected of ['POST /guests', 'GET /guests/{id}', 'POST /guests/{id}/start', 'GET /jobs/{id}', 'GET /health', 'GET /events']) {
      expect(operations, `listed operations: ${operations.join(', ')}`).to.include(expected);
    }
    expect(await page.title()).to.equal('hyperkern API');
    expect(await page.locator('.info .title').innerText()).to.match(/hyperkern/);
    expect(await page.locator('.btn.authorize').count(), 'the bearer scheme gives an Authorize button').to.equal(1);
    expect(foreign, 'requests to anything but the agent').to.deep.equal([]);
    expect(failed, 'requests that failed').to.deep.equal([]);
    await mkdir(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, 'docs-page.png');
    const shot = await page.screenshot({ path: file, fullPage: false });
    expect(shot.length, 'screenshot bytes').to.be.greaterThan(10000);
  });
});
