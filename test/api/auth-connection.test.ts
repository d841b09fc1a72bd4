/**
 * Auth on keep-alive connections: a connection that passed once is not
 * trusted for a different header (core/http/auth.ts remembers only the exact
 * header that passed).
 */
import { expect } from 'chai';
import { Agent, request } from 'undici';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

const TOKEN = 'connection-test-token-0123456789';

describe('bearer auth on one keep-alive connection', function () {
  this.timeout(60_000);
  let dispatcher: Agent | undefined;
  // Registered first, so the connection closes before the agent stops.
  afterEach(async () => {
    await dispatcher?.close();
  });
  const agents = agentsPerTest();

  it('checks every request whose header differs from the one that passed', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig({ auth: { tokens: [TOKEN] } }) });
    // One connection, reused for every request.
    dispatcher = new Agent({ connections: 1, pipelining: 1 });
    const get = async (authorization?: string) => {
      const res = await request(`${agent.url}/guests`, { dispatcher, headers: authorization ? { authorization } : {} });
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
