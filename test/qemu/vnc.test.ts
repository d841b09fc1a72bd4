/**
 * GET /guests/{id}/vnc on a real QEMU guest (TCG) through a real agent: the
 * RFB greeting arrives as the first binary frame; refusals are plain HTTP
 * (401 without a token or with a used ticket, 409 for a guest that is off,
 * 426 for a plain GET); and noVNC, the `@novnc/novnc` package in headless
 * Chromium, connects through the route with a single-use ticket and draws
 * the guest's screen (screenshot in test-artifacts/).
 */
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type BrowserContext } from 'playwright-core';
import { makeTempDir, removeDir, repoRoot, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { attemptWebSocket, type Attempt } from '../support/websocket-attempt.js';
import { FIRST_BOOT_MS, GUEST_ACTION_SECONDS, underLoad } from '../support/load-budget.js';
import { disposeQemuTestAgent } from './kill-test-qemus.js';
import { QemuWorld } from './world.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts');
const NOVNC = path.join(repoRoot, 'node_modules', '@novnc', 'novnc');
const TOKEN = 'vnc-test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

/** config/qemu.json with VNC on a unix socket in each guest's run dir (no TCP port at all). */
function vncConfig(imagesDir: string): object {
  const config = shippedConfig('qemu.json');
  const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
  entry.options = { ...entry.options, accel: 'tcg', imagesDir, vnc: true, vncSocket: true, shutdownTimeoutSeconds: GUEST_ACTION_SECONDS };
  const images = config.plugins.find((p: { module: string }) => p.module === 'images');
  if (images) images.options = { ...images.options, imagesDir };
  return { ...config, logLevel: 'info', auth: { tokens: [TOKEN] } };
}

/** noVNC's ES modules (core/, vendor/) and a page that opens the screen, from a loopback server of the test's own. */
function serveNoVnc(): Promise<Server> {
  const page = `<!doctype html><meta charset="utf-8"><title>noVNC test</title>
<div id="screen" style="width:1024px;height:768px"></div>
<script type="module">
  import RFB from '/core/rfb.js';
  const target = new URLSearchParams(location.search).get('ws');
  window.vnc = { connected: false, disconnected: null, securityFailure: null };
  const rfb = new RFB(document.getElementById('screen'), target, { wsProtocols: ['binary'], shared: true });
  rfb.scaleViewport = false;
  rfb.addEventListener('connect', () => (window.vnc.connected = true));
  rfb.addEventListener('disconnect', (e) => (window.vnc.disconnected = e.detail.clean ? 'clean' : 'unclean'));
  rfb.addEventListener('securityfailure', (e) => (window.vnc.securityFailure = e.detail.reason ?? 'failed'));
</script>`;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
      return;
    }
    // Only files under noVNC's own folders; nothing else of the host.
    const file = path.join(NOVNC, path.normalize(url.pathname));
    if (!/^\/(core|vendor)\//.test(url.pathname) || !file.startsWith(NOVNC + path.sep) || !(await stat(file).catch(() => undefined))?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function expectRefused(attempt: Attempt, status: number, message: RegExp): void {
  if (attempt.upgraded) {
    attempt.ws.terminate();
    expect.fail(`expected a plain ${status} answer, got an open WebSocket`);
  }
  expect(attempt.status).to.equal(status);
  expect(attempt.body.message).to.match(message);
}

describe('GET /guests/{id}/vnc on QEMU (real QEMU under TCG, noVNC in Chromium)', function () {
  this.timeout(600000);
  let world: QemuWorld;
  let agent: RunningAgent;
  let guestId: string;

  before(async function () {
    this.timeout(FIRST_BOOT_MS + 120000);
    world = await QemuWorld.create();
    agent = await startAgent({ config: vncConfig(world.imagesDir) });
    const created = await agent.request('POST', '/guests?wait=120', { memory: 256, cpu: 1, disks: [{ size: 16 }], metadata: world.tinyBoot }, auth);
    expect(created.status, created.text).to.equal(200);
    expect(created.body.state).to.equal('running');
    expect(created.body.vnc, 'VNC on a unix socket has no port').to.equal(0);
    guestId = created.body.id;
  });
  after(async () => {
    await disposeQemuTestAgent(agent);
    await world?.dispose();
  });

  it('sends the RFB ProtocolVersion as the first binary frame, on the binary subprotocol', async () => {
    const started = performance.now();
    const attempt = await attemptWebSocket(`${agent.url}/guests/${guestId}/vnc`, { protocols: ['binary'], headers: auth });
    if (!attempt.upgraded) expect.fail(`no upgrade: ${attempt.status} ${JSON.stringify(attempt.body)}`);
    const first = await attempt.messages.next(underLoad(10000));
    console.log(`      handshake to RFB greeting: ${Math.round(performance.now() - started)} ms`);
    expect(attempt.protocol, 'the subprotocol noVNC and websockify use').to.equal('binary');
    expect(attempt.requestId, 'the 101 carries the request id').to.be.a('string');
    expect(first.binary, 'a binary frame').to.equal(true);
    expect(first.data.toString('latin1')).to.equal('RFB 003.008\n');
    // Client bytes reach QEMU: its answer to our version is its security types (1 = none).
    attempt.ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
    const security = await attempt.messages.next(underLoad(10000));
    expect([...security.data], 'one security type: None').to.deep.equal([1, 1]);
    const closed = new Promise<number>((resolve) => attempt.ws.once('close', (code) => resolve(code)));
    attempt.ws.close(1000);
    expect(await closed).to.equal(1000);
  });

  it('answers 401 without a token or with a used ticket, 409 for a guest that is off, 426 for a plain GET, without upgrading', async () => {
    const off = await agent.request('POST', '/guests?wait=60&start=false', { memory: 128, cpu: 1, disks: [{ size: 8 }] }, auth);
    expect(off.status, off.text).to.equal(200);
    expectRefused(await attemptWebSocket(`${agent.url}/guests/${guestId}/vnc`), 401, /authentication required/);
    expectRefused(await attemptWebSocket(`${agent.url}/guests/${off.body.id}/vnc`, { headers: auth }), 409, /is off; its screen exists while it is running or suspended/);
    expectRefused(await attemptWebSocket(`${agent.url}/guests/nope/vnc`, { headers: auth }), 404, /no guest with id "nope"/);
    const plain = await agent.request('GET', `/guests/${guestId}/vnc`, undefined, auth);
    expect(plain.status, plain.text).to.equal(426);
    expect(plain.headers.get('upgrade')).to.equal('websocket');
    // A ticket opens one WebSocket of its guest, once.
    const issued = await agent.request('POST', `/guests/${guestId}/console/ticket`, undefined, auth);
    expect(issued.status, issued.text).to.equal(200);
    const once = await attemptWebSocket(`${agent.url}/guests/${guestId}/vnc?ticket=${issued.body.ticket}`);
    if (!once.upgraded) expect.fail(`the ticket did not open the screen: ${once.status} ${JSON.stringify(once.body)}`);
    expect((await once.messages.next(underLoad(10000))).data.toString('latin1')).to.equal('RFB 003.008\n');
    once.ws.terminate();
    expectRefused(await attemptWebSocket(`${agent.url}/guests/${guestId}/vnc?ticket=${issued.body.ticket}`), 401, /ticket unknown, already used or expired/);
    expect((await agent.request('DELETE', `/guests/${off.body.id}?wait=60`, undefined, auth)).status).to.equal(200);
  });

  it('noVNC in Chromium connects through the route and draws the screen', async function () {
    const files = await serveNoVnc();
    const profile = await makeTempDir('hyperkern-chromium-');
    let browser: BrowserContext | undefined;
    try {
      browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        viewport: { width: 1100, height: 850 },
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      // A browser cannot send the token on a WebSocket: the page gets a ticket, as a web UI would.
      const issued = await agent.request('POST', `/guests/${guestId}/console/ticket`, undefined, auth);
      expect(issued.status, issued.text).to.equal(200);
      const screenUrl = `${agent.url.replace(/^http/, 'ws')}/guests/${guestId}/vnc?ticket=${encodeURIComponent(issued.body.ticket)}`;
      const pageUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}/?ws=${encodeURIComponent(screenUrl)}`;
      await page.goto(pageUrl, { waitUntil: 'load' });
      await page.waitForFunction(() => (window as unknown as { vnc?: { connected: boolean } }).vnc?.connected === true, undefined, { timeout: underLoad(60000) });
      // The screen is drawn once the framebuffer holds more than one colour (SeaBIOS and boot text on VGA).
      const colours = await waitFor(
        async () => {
          const count = await page.evaluate(() => {
            const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
            if (!canvas || canvas.width < 100) return 0;
            const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
            const seen = new Set<number>();
            for (let i = 0; i < pixels.length && seen.size < 16; i += 4) seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
            return seen.size;
          });
          return count > 1 ? count : undefined;
        },
        underLoad(60000),
        'noVNC to draw a non-uniform screen',
      );
      expect(colours, 'distinct colours on the canvas').to.be.greaterThan(1);
      const size = await page.evaluate(() => {
        const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement;
        return { width: canvas.width, height: canvas.height };
      });
      expect(size.width, 'the guest framebuffer width').to.be.at.least(640);
      const state = await page.evaluate(() => (window as unknown as { vnc: object }).vnc);
      expect(state).to.deep.include({ connected: true, securityFailure: null, disconnected: null });
      expect(errors, 'page errors').to.deep.equal([]);
      await mkdir(ARTIFACTS, { recursive: true });
      const shot = await page.screenshot({ path: path.join(ARTIFACTS, 'vnc-novnc.png') });
      expect(shot.length, 'screenshot bytes').to.be.greaterThan(5000);
    } finally {
      await browser?.close();
      await removeDir(profile);
      await new Promise((resolve) => files.close(resolve));
    }
  });
});
