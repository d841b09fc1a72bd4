/**
 * The guest view on a real QEMU guest (the tiny test guest under TCG, VNC
 * on a unix socket, a token configured), in real Chromium: the console
 * panel talks to the guest's own shell on ttyS0; the CPU chart rises when
 * that shell runs a busy loop typed from the page; the screen tab draws the
 * guest's VGA screen with noVNC through the agent's VNC route, opened with
 * a console ticket. Heavy (QEMU): run it through tools' heavy lock, alone.
 * Screenshots go to the OS temp dir (test/support/chromium.ts).
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { launchChromium, newPage, screenshot, watchPage } from '../support/chromium.js';
import { tcgQemuConfig } from '../support/configs.js';
import { FIRST_BOOT_MS, underLoad } from '../support/load-budget.js';
import { CONSOLE_PROMPT, INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { disposeQemuTestAgent } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';

const TOKEN = 'guest-qemu-ui-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
const UI_TIMEOUT = underLoad(60_000);

/** config/qemu.json with VNC on a unix socket in each guest's run dir, and a token. */
function qemuConfig(imagesDir: string): object {
  return { ...tcgQemuConfig(imagesDir, { vnc: true, vncSocket: true }), auth: { tokens: [TOKEN] } };
}

describe('guest view on a QEMU guest in Chromium (real QEMU under TCG)', function () {
  this.timeout(900_000);
  let world: QemuWorld;
  let agent: RunningAgent;
  let browser: Browser;
  let page: Page;
  let seen: ReturnType<typeof watchPage>;
  let guestId: string;

  const cpuPercent = async () => {
    const text = await page.locator('#chart-cpu .guest-chart-latest').innerText();
    const match = /\) (\d+\.\d) %$/.exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const terminalHas = (pattern: RegExp) =>
    page.waitForFunction((source) => new RegExp(source, 'm').test((document.querySelector('.guest-terminal .xterm-rows') as HTMLElement | null)?.innerText ?? ''), pattern.source, {
      timeout: UI_TIMEOUT,
    });

  before(async function () {
    this.timeout(FIRST_BOOT_MS + 180_000);
    world = await QemuWorld.create();
    agent = await startAgent({ config: qemuConfig(world.imagesDir) });
    const created = await agent.request('POST', '/guests?wait=120', { memory: 256, cpu: 1, disks: [{ size: 16 }], metadata: { ...world.tinyBoot, name: 'tiny-ui' } }, auth);
    expect(created.status, created.text).to.equal(200);
    guestId = created.body.id;
    // The guest's init has run: its shell is on the console.
    await waitFor(
      async () => ((await agent.request('GET', `/guests/${guestId}/console/log`, undefined, auth)).text.includes(INIT_REACHED) ? true : undefined),
      FIRST_BOOT_MS,
      'the tiny guest to reach init',
    );
    browser = await launchChromium();
    page = await newPage(browser, { width: 1280, height: 1000 });
    seen = watchPage(page, agent.url);
    await page.addInitScript((token) => sessionStorage.setItem('hyperkern.token', token), TOKEN);
    await page.goto(`${agent.url}/ui#/guests/${guestId}`);
    await page.locator('[data-guest-state="running"]').waitFor({ timeout: UI_TIMEOUT });
  });
  after(async () => {
    await browser?.close();
    await disposeQemuTestAgent(agent);
    await world?.dispose();
  });

  it("types into the guest's own shell from the console panel", async () => {
    await page.getByRole('tab', { name: 'Console' }).click();
    await page.locator('.guest-console-status[data-open="true"]').waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.guest-terminal').click();
    // The shell computes the answer: these bytes went through the agent into ttyS0 and back.
    await page.keyboard.type('echo from-page-$((6*7))');
    await page.keyboard.press('Enter');
    await terminalHas(/^from-page-42$/);
    expect(await page.locator('.guest-terminal .xterm-rows').innerText()).to.contain(CONSOLE_PROMPT.trim());
    await screenshot(page, 'ui-guest-qemu-console');
  });

  it('draws the CPU chart rising while the guest runs a busy loop typed from the page', async () => {
    await page.getByRole('tab', { name: 'Overview' }).click();
    const idle = await waitFor(async () => cpuPercent(), UI_TIMEOUT, 'a first CPU rate');
    console.log(`      idle guest: ${idle} % of its vCPU`);
    await page.getByRole('tab', { name: 'Console' }).click();
    await page.locator('.guest-console-status[data-open="true"]').waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.guest-terminal').click();
    await page.keyboard.type('while :; do :; done & echo busy-loop-$((40+2))');
    await page.keyboard.press('Enter');
    await terminalHas(/^busy-loop-42$/);
    await page.getByRole('tab', { name: 'Overview' }).click();
    // TCG on a shared host gives the vCPU what it can: well above idle is the point, not a number.
    const busy = await waitFor(
      async () => {
        const now = await cpuPercent();
        return now !== undefined && now > idle + 20 ? now : undefined;
      },
      UI_TIMEOUT,
      `the CPU rate to rise above ${idle + 20} %`,
    );
    console.log(`      busy guest: ${busy} % of its vCPU`);
    await screenshot(page, 'ui-guest-qemu-charts');
    await page.getByRole('tab', { name: 'Console' }).click();
    await page.locator('.guest-console-status[data-open="true"]').waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.guest-terminal').click();
    await page.keyboard.type('kill $!');
    await page.keyboard.press('Enter');
  });

  it("draws the guest's screen with noVNC in the Screen tab, through a ticket", async () => {
    await page.getByRole('tab', { name: 'Screen' }).click();
    await page.locator('.guest-screen-status[data-connected="true"]').waitFor({ timeout: UI_TIMEOUT });
    // Drawn once the framebuffer holds more than one colour (the boot text on VGA).
    const colours = await waitFor(
      async () => {
        const count = await page.evaluate(() => {
          const canvas = document.querySelector('.guest-vnc canvas') as HTMLCanvasElement | null;
          if (!canvas || canvas.width < 100) return 0;
          const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
          const seen = new Set<number>();
          for (let i = 0; i < pixels.length && seen.size < 16; i += 4) seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
          return seen.size;
        });
        return count > 1 ? count : undefined;
      },
      UI_TIMEOUT,
      'noVNC to draw a non-uniform screen',
    );
    expect(colours).to.be.greaterThan(1);
    expect(await page.getByRole('button', { name: 'Send Ctrl+Alt+Del' }).isEnabled()).to.equal(true);
    await screenshot(page, 'ui-guest-qemu-screen');
    // Leaving the tab closes the screen's WebSocket (noVNC disconnects).
    await page.getByRole('tab', { name: 'Overview' }).click();
    expect(await page.locator('.guest-vnc').count()).to.equal(0);
    expect(seen.foreign, 'requests to anything but the agent').to.deep.equal([]);
    // The panel asks whether there is a screen with a plain GET, which a WebSocket route answers 426: Chromium logs it.
    expect(
      seen.errors.filter((e) => !/status of 426/.test(e)),
      'page errors',
    ).to.deep.equal([]);
  });
});
