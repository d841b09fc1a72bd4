/**
 * Debian's headless Chromium driven by playwright-core, for the tests of
 * the web console (test/ui/) and the bench (bench/ui.ts): one browser per
 * suite, a fresh context (no cookies, no storage) per page, and the
 * screenshots kept as test artifacts in the OS temp dir (never committed).
 */
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Where screenshots go: $TMPDIR/hyperkern-ui-artifacts/. */
export const ARTIFACTS = path.join(tmpdir(), 'hyperkern-ui-artifacts');

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page in a context of its own (its own sessionStorage), 1280x900 unless told. */
export async function newPage(browser: Browser, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  return context.newPage();
}

/** Saves a screenshot of the page as NAME.png among the artifacts; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Collects what a page logs as errors and every request that left the agent, to assert on at the end. */
export function watchPage(page: Page, agentUrl: string): { errors: string[]; foreign: string[] } {
  const seen = { errors: [] as string[], foreign: [] as string[] };
  page.on('pageerror', (error) => seen.errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') seen.errors.push(message.text());
  });
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(agentUrl) && !url.startsWith(agentUrl.replace(/^http/, 'ws')) && !url.startsWith('data:')) seen.foreign.push(url);
  });
  return seen;
}
