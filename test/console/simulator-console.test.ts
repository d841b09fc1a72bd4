/**
 * The console API on the simulator's line-echo console, over real
 * WebSockets on loopback: attach before the boot, type in the open's own
 * tick, several viewers, the log, events, auth (token, tickets), the HTTP
 * refusals before any upgrade, and a slow viewer cut off while another
 * keeps going.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import type { TestAgent } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { openConsole, refusedUpgrade, type ConsoleViewerClient } from '../support/console-client.js';
import { readSse } from '../support/sse-reader.js';

const TOKEN = 'console-test-token-0123456789';

async function newGuest(agent: TestAgent, start: boolean, headers: Record<string, string> = {}): Promise<string> {
  const res = await agent.request('POST', `/guests?wait=10${start ? '' : '&start=false'}`, { memory: 64, cpu: 1 }, headers);
  expect(res.status, res.text).to.equal(200);
  return (res.body as { id: string }).id;
}

/** Every viewer opened in a test is closed after it, whatever happened. */
function viewers(): { open: typeof openConsole; closeAll(): Promise<void> } {
  const opened: ConsoleViewerClient[] = [];
  return {
    open: async (...args) => {
      const viewer = await openConsole(...args);
      opened.push(viewer);
      return viewer;
    },
    closeAll: async () => {
      await Promise.all(opened.splice(0).map((v) => v.close()));
    },
  };
}

describe('console: the simulator over WebSocket', function () {
  const agent = suiteAgent(() => ({ config: simulatorConfig({ console: { viewerBufferBytes: 256 * 1024 } }) }));
  const v = viewers();
  afterEach(() => v.closeAll());

  it('a viewer attached while the guest is off sees its boot from the first byte, and its reset', async () => {
    const id = await newGuest(agent, false);
    const viewer = await v.open(agent.url, id);
    expect(viewer.received().length, 'an off guest prints nothing').to.equal(0);
    expect((await agent.request('POST', `/guests/${id}/start?wait=10`)).status).to.equal(200);
    await viewer.waitFor(/sim-\S+\$ $/, 5000);
    expect(viewer.received().toString('latin1')).to.match(new RegExp(`^\\r\\nhyperkern simulator: guest ${id} boots \\(start\\)`));
    const mark = viewer.received().length;
    expect((await agent.request('POST', `/guests/${id}/restart?wait=10`)).status).to.equal(200);
    await viewer.waitFor(/boots \(reset\)/, 5000, mark);
  });

  it('loses no byte typed in the tick the WebSocket opens', async () => {
    const id = await newGuest(agent, true);
    const viewer = await v.open(agent.url, id, { onOpen: (ws) => ws.send(Buffer.from('echo same-tick\r')) });
    await viewer.waitFor(/echo same-tick\r\nsame-tick\r\n/, 5000);
  });

  it('several viewers see the same bytes, and each may type', async () => {
    const id = await newGuest(agent, true);
    const a = await v.open(agent.url, id);
    const b = await v.open(agent.url, id);
    a.type('echo from-a\r');
    await b.waitFor(/from-a\r\n.*\$ $/s, 5000);
    b.type('echo from-b\r');
    await a.waitFor(/from-b\r\n.*\$ $/s, 5000);
    await b.waitFor(/from-b\r\n.*\$ $/s, 5000);
    expect(a.received().equals(b.received()), `a: ${JSON.stringify(a.received().toString())}\nb: ${JSON.stringify(b.received().toString())}`).to.equal(true);
  });

  it('the log has what was printed while nobody watched, as text/plain, the last N bytes', async () => {
    const id = await newGuest(agent, true);
    const res = await fetch(`${agent.url}/guests/${id}/console/log`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('text/plain; charset=utf-8');
    const text = await res.text();
    expect(text).to.match(new RegExp(`guest ${id} boots \\(start\\)`));
    const tail = await (await fetch(`${agent.url}/guests/${id}/console/log?bytes=5`)).text();
    expect(tail).to.equal(text.slice(-5));
    for (const bad of ['0', '-1', 'x', String(1024 * 1024 + 1)]) {
      const answer = await agent.request('GET', `/guests/${id}/console/log?bytes=${bad}`);
      expect(answer.status, bad).to.equal(400);
      expect((answer.body as { message: string }).message).to.match(/bytes must be a whole number from 1 to 1048576/);
    }
  });

  it('attach, detach and reset are events on /events', async () => {
    const id = await newGuest(agent, true);
    const events = await readSse(`${agent.url}/events?guest=${id}&type=console`);
    try {
      const viewer = await v.open(agent.url, id);
      expect((await agent.request('POST', `/guests/${id}/restart?wait=10`)).status).to.equal(200);
      await viewer.waitFor(/boots \(reset\)/, 5000);
      await viewer.close();
      const deadline = Date.now() + 5000;
      while (events.messages.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const seen = events.messages.map((m) => ({ event: m.event, data: JSON.parse(m.data).data }));
      expect(seen.map((e) => e.event)).to.deep.equal(['console.attached', 'console.reset', 'console.detached']);
      expect(seen[0].data.viewers).to.equal(1);
      expect(seen[1].data.reason).to.equal('reset');
      expect(seen[2].data).to.include({ viewers: 0 });
      expect(seen[2].data.reason).to.match(/the viewer closed the console/);
    } finally {
      events.close();
    }
  });

  it('refusals are HTTP answers before any upgrade: 404 unknown guest, 426 not a WebSocket', async () => {
    const unknown = await refusedUpgrade(agent.url, 'no-such-guest');
    expect(unknown.status).to.equal(404);
    expect(unknown.json.error).to.equal('HK_ERR_GUEST_NOT_FOUND');
    const id = await newGuest(agent, true);
    const plain = await agent.request('GET', `/guests/${id}/console`);
    expect(plain.status).to.equal(426);
    expect(plain.headers.get('upgrade')).to.equal('websocket');
    expect((plain.body as { message: string }).message).to.match(/is a WebSocket/);
  });

  it('a slow viewer is cut off; the guest and the other viewer go on', async function () {
    const id = await newGuest(agent, true);
    const slow = await v.open(agent.url, id);
    const fast = await v.open(agent.url, id);
    // The slow viewer stops reading: its bytes pile up in the agent once the socket buffers are full.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const line = 'x'.repeat(60 * 1024);
    for (let i = 0; i < 80; i += 1) {
      const mark = fast.received().length;
      fast.type(`${line}\r`);
      await fast.waitFor(/x\r\nx+\r\nsim-\S+\$ $/, 10_000, mark);
    }
    fast.type('echo still-here\r');
    await fast.waitFor(/still-here\r\n/, 10_000);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await Promise.race([slow.closed, new Promise<undefined>((r) => setTimeout(r, 10_000))]);
    expect(closed, 'the slow viewer was closed').to.not.equal(undefined);
    expect([4001, 1006]).to.include(closed!.code);
    const events = await readSse(`${agent.url}/events?since=0&guest=${id}&type=console.detached`);
    try {
      const deadline = Date.now() + 5000;
      while (!events.messages.some((m) => /too slow/.test(m.data)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(events.messages.map((m) => JSON.parse(m.data).data.reason).join('\n')).to.match(/viewer too slow: over 262144 bytes of console output unsent/);
    } finally {
      events.close();
    }
  });
});

describe('console: auth', function () {
  const agent = suiteAgent(() => ({ config: simulatorConfig(), env: { HYPERKERN_TOKENS: TOKEN } }));
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const v = viewers();
  afterEach(() => v.closeAll());

  it('without a token, or with a wrong one: 401 over HTTP, no upgrade', async () => {
    const id = await newGuest(agent, true, auth);
    for (const token of [undefined, 'wrong-token-wrong-token']) {
      const refused = await refusedUpgrade(agent.url, id, { token });
      expect(refused.status, String(token)).to.equal(401);
      expect(refused.contentType).to.match(/application\/json/);
      expect(refused.json.error).to.equal('HK_ERR_UNAUTHORIZED');
    }
    const viewer = await v.open(agent.url, id, { token: TOKEN });
    viewer.type('echo with-token\r');
    await viewer.waitFor(/with-token\r\n/, 5000);
  });

  it('a ticket opens the console once; a used one, or one for another guest, is a 401', async () => {
    const id = await newGuest(agent, true, auth);
    const other = await newGuest(agent, true, auth);
    expect((await agent.request('POST', `/guests/${id}/console/ticket`)).status, 'the ticket route needs the token').to.equal(401);
    const issued = await agent.request('POST', `/guests/${id}/console/ticket`, undefined, auth);
    expect(issued.status).to.equal(200);
    const { ticket, url, expiresAt } = issued.body as { ticket: string; url: string; expiresAt: string };
    expect(url).to.equal(`/guests/${id}/console?ticket=${ticket}`);
    expect(Date.parse(expiresAt) - Date.now()).to.be.within(20_000, 31_000);
    const viewer = await v.open(agent.url, id, { ticket });
    viewer.type('echo with-ticket\r');
    await viewer.waitFor(/with-ticket\r\n/, 5000);
    const used = await refusedUpgrade(agent.url, id, { ticket });
    expect(used.status).to.equal(401);
    expect(used.json.message).to.match(/ticket unknown, already used or expired/);
    const forOther = (await agent.request('POST', `/guests/${id}/console/ticket`, undefined, auth)).body as { ticket: string };
    expect((await refusedUpgrade(agent.url, other, { ticket: forOther.ticket })).status).to.equal(401);
    expect((await refusedUpgrade(agent.url, id, { ticket: forOther.ticket })).status, 'tried once, used up').to.equal(401);
    // The same tickets open the guest's screen (GET /guests/{id}/vnc): past auth, the simulator has no VNC.
    const forScreen = (await agent.request('POST', `/guests/${id}/console/ticket`, undefined, auth)).body as { ticket: string };
    const screen = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${agent.url.replace('http', 'ws')}/guests/${id}/vnc?ticket=${forScreen.ticket}`);
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', reject);
    });
    expect(screen, 'a ticket gets past auth on /vnc').to.be.oneOf([101, 409, 501]);
  });

  it('the log needs the token too', async () => {
    const id = await newGuest(agent, true, auth);
    expect((await agent.request('GET', `/guests/${id}/console/log`)).status).to.equal(401);
    expect((await agent.request('GET', `/guests/${id}/console/log`, undefined, auth)).status).to.equal(200);
  });
});

describe('console: a backend without one', function () {
  const agent = suiteAgent(() => {
    const config = simulatorConfig();
    for (const plugin of config.plugins) if (plugin.module === 'simulator') plugin.isolate = true;
    return { config };
  });

  it('an isolated plugin: 501 naming the backend, before any upgrade, for the WebSocket, the ticket and the log', async () => {
    const id = await newGuest(agent, true);
    const refused = await refusedUpgrade(agent.url, id);
    expect(refused.status).to.equal(501);
    expect(refused.json.error).to.equal('HK_ERR_CONSOLE_UNSUPPORTED');
    expect(refused.json.message).to.match(/plugin "simulator".*runs in a child process/);
    for (const [method, path] of [['POST', `/guests/${id}/console/ticket`], ['GET', `/guests/${id}/console/log`]] as const) {
      const res = await agent.request(method, path);
      expect(res.status, path).to.equal(501);
      expect((res.body as { message: string }).message).to.match(/plugin "simulator"/);
    }
  });
});
