/**
 * Auth on keep-alive connections: a connection that passed once is not
 * trusted for a different header (core/http/auth.ts remembers only the exact
 * header that passed).
 */
import { expect } from 'chai';
import { Agent, request } from 'undici';
import { removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';

const TOKEN = 'connection-test-token-0123456789';

describe('bearer auth on one keep-alive connection', function () {
  this.timeout(60_000);
  let agent: RunningAgent | undefined;
  let dispatcher: Agent | undefined;

  afterEach(async () => {
    await dispatcher?.close();
    await agent?.stop();
    if (agent) await removeDir(agent.dataDir);
    agent = undefined;
  });

  it('checks every request whose header differs from the one that passed', async () => {
    agent = await startAgent({ config: simulatorConfig({ auth: { tokens: [TOKEN] } }) });
    // One connection, reused for every request.
    dispatcher = new Agent({ connections: 1, pipelining: 1 });
    const get = async (authorization?: string) => {
      const res = await request(`${agent!.url}/guests`, { dispatcher, headers: authorization ? { authorization } : {} });
      await res.body.text();
      return res.statusCode;
    };
    let connects = 0;
    dispatcher.on('connect', () => connects++);
    expect(await get(`Bearer ${TOKEN}`)).to.equal(200);
    expect(await get(`Bearer ${TOKEN}`)).to.equal(200);
    expect(await get(`Bearer ${TOKEN}x`), 'another token on the same connection').to.equal(401);
    expect(await get(), 'no token on the same connection').to.equal(401);
    expect(await get(`Bearer ${TOKEN}`)).to.equal(200);
    expect(connects, 'all requests went over one connection').to.equal(1);
  });
});
