/**
 * Bounds and ownership at the API: metadata limits per guest and host, the
 * kernel's reserved keys, capped error bodies, create retries that differ.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

describe('API: limits, reserved metadata and create retries', function () {
  this.timeout(60000);
  const agent = suiteAgent(() => ({ config: simulatorConfig({ limits: { metadataKeys: 8, metadataBytes: 4096, errorIssues: 5 } }) }));

  it('refuses a guest PATCH beyond the key or byte limit, changing nothing', async () => {
    const id = (await agent.request('POST', '/guests?wait=10&start=false', { metadata: { a: '1' } })).body.id;
    const many = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v']));
    const tooMany = await agent.request('PATCH', `/guests/${id}/metadata`, many);
    expect(tooMany.status).to.equal(400);
    expect(tooMany.body.message).to.contain('would hold 9 keys; at most 8 are allowed (limits.metadataKeys)');
    const big = await agent.request('PATCH', `/guests/${id}/metadata`, { big: 'x'.repeat(5000) });
    expect(big.status).to.equal(400);
    expect(big.body.message).to.contain('at most 4096 are allowed (limits.metadataBytes)');
    expect((await agent.request('GET', `/guests/${id}/metadata`)).body).to.deep.equal({ a: '1' });
    // Removing keys is always possible, even on a guest at its limit.
    expect((await agent.request('PATCH', `/guests/${id}/metadata`, { a: null })).body).to.deep.equal({});
    const create = await agent.request('POST', '/guests', { metadata: many, cpu: 1 });
    expect(create.status).to.equal(202);
    const over = await agent.request('POST', '/guests', { metadata: { ...many, one: 'more' } });
    expect(over.status).to.equal(400);
    const host = await agent.request('PATCH', '/metadata', { huge: 'y'.repeat(5000) });
    expect(host.status).to.equal(400);
    expect(host.body.message).to.contain('host metadata would hold');
  });

  it('keeps hyperkern.* keys for the agent: PATCH 400 naming the key, a create body\'s values ignored', async () => {
    const res = await agent.request('POST', '/guests?wait=10&start=false', { metadata: { 'hyperkern.error': 'fake', ok: 'y' } });
    expect(res.body.metadata).to.deep.equal({ ok: 'y' });
    const patch = await agent.request('PATCH', `/guests/${res.body.id}/metadata`, { 'hyperkern.error': 'fake' });
    expect(patch.status).to.equal(400);
    expect(patch.body.message).to.equal('metadata key "hyperkern.error" belongs to the agent and cannot be set or removed by clients');
  });

  it('caps the issue list of a 400 and counts the rest', async () => {
    const res = await agent.request('POST', '/guests', { nics: Array.from({ length: 30 }, () => ({ vlans: ['x', 'y'] })) });
    expect(res.status).to.equal(400);
    expect(res.body.issues).to.have.length(5);
    expect(res.body.issuesTotal).to.be.above(5);
    expect(res.text.length).to.be.below(4096);
  });

  it('answers a create retry with the same id and other fields 409 naming the difference; the same fields 200', async () => {
    const id = randomUUID();
    expect((await agent.request('POST', '/guests?wait=10&start=false', { id, memory: 256, disks: [{ size: 64 }] })).status).to.equal(200);
    const same = await agent.request('POST', '/guests', { id, memory: 256, disks: [{ size: 64 }] });
    expect(same.status).to.equal(200);
    const other = await agent.request('POST', '/guests', { id, memory: 512, disks: [{ size: 64 }] });
    expect(other.status).to.equal(409);
    expect(other.body.message).to.contain('memory is 256, the retry asks for 512');
    const disks = await agent.request('POST', '/guests', { id, memory: 256, disks: [{ size: 64 }, { size: 1 }] });
    expect(disks.body.message).to.contain('it has 1 disks, the retry asks for 2');
  });

  it('answers what Node\'s HTTP parser refuses (431, 400) as JSON errors', async () => {
    const { connect } = await import('node:net');
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const { hostname, port } = new URL(agent.url);
        const socket = connect(Number(port), hostname, () => socket.write(request));
        let text = '';
        socket.on('data', (d) => (text += d));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
        socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
      });
    const big = await raw(`GET /guests HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
    expect(big).to.match(/^HTTP\/1.1 431/);
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4))).to.include({ code: 431, error: 'HK_ERR_HTTP_431' });
    const bad = await raw('NOT A REQUEST\r\n\r\n');
    expect(bad).to.match(/^HTTP\/1.1 400/);
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4)).error).to.equal('HK_ERR_HTTP_400');
  });
});
