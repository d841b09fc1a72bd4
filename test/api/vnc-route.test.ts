/**
 * GET /guests/{id}/vnc refusals, all as plain HTTP answers (no upgrade):
 * 401 without a token, 404 for an unknown guest, 501 when the config maps
 * no vnc stage (the simulator has no screen), 426 for a GET that is not a
 * WebSocket handshake. Opening a real guest's screen is test/qemu/vnc.test.ts.
 */
import { expect } from 'chai';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { attemptWebSocket, type Attempt } from '../support/websocket-attempt.js';

const TOKEN = 'vnc-route-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

function refused(attempt: Attempt, status: number, message: RegExp): void {
  if (attempt.upgraded) {
    attempt.ws.terminate();
    expect.fail(`expected a plain ${status} answer, got an open WebSocket`);
  }
  expect(attempt.status).to.equal(status);
  expect(attempt.body).to.include({ code: status });
  expect(attempt.body.message).to.match(message);
  expect(attempt.headers.connection, 'the connection ends with the answer').to.equal('close');
}

describe('API: GET /guests/{id}/vnc refusals', function () {
  const agent = suiteAgent(() => ({ config: simulatorConfig({ auth: { tokens: [TOKEN] } }) }));

  it('answers 401, 404 and 501 to WebSocket handshakes without upgrading', async () => {
    const created = await agent.request('POST', '/guests?wait=10', { memory: 64, cpu: 1, disks: [{ size: 8 }] }, auth);
    expect(created.status, created.text).to.equal(200);
    const id = created.body.id;
    refused(await attemptWebSocket(`${agent.url}/guests/${id}/vnc`), 401, /authentication required/);
    refused(await attemptWebSocket(`${agent.url}/guests/${id}/vnc`, { headers: { authorization: 'Bearer wrong-token-0123456789' } }), 401, /invalid bearer token/);
    refused(await attemptWebSocket(`${agent.url}/guests/no-such-guest/vnc`, { headers: auth }), 404, /no guest with id "no-such-guest"/);
    refused(await attemptWebSocket(`${agent.url}/guests/${id}/vnc`, { headers: auth, protocols: ['binary'] }), 501, /maps no stage to "vnc"/);
  });

  it('answers documented JSON errors to plain GETs', async () => {
    const created = await agent.request('POST', '/guests?wait=10', { memory: 64, cpu: 1, disks: [{ size: 8 }] }, auth);
    const id = created.body.id;
    const plain = await agent.request('GET', `/guests/${id}/vnc`, undefined, auth);
    expect(plain.status, plain.text).to.equal(501);
    const unknown = await agent.request('GET', '/guests/no-such-guest/vnc', undefined, auth);
    expect(unknown.status).to.equal(404);
    expect((await agent.request('GET', `/guests/${id}/vnc`)).status).to.equal(401);
  });
});
