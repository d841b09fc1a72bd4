/** The JSON-RPC 1.0 client against the test sub-agent: replies that are not answers. */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { JsonRpcClient } from '../../plugins/jsonrpc/json-rpc-client.js';
import { FakeSubAgent } from './fake-sub-agent.js';

describe('jsonrpc: client', function () {
  let sub: FakeSubAgent;
  let client: JsonRpcClient;
  const signal = new AbortController().signal;

  before(async () => {
    sub = await new FakeSubAgent('Test').start();
    client = new JsonRpcClient({ port: sub.port, path: '/_mistify_RPC_', maxPending: 2 });
  });
  after(async () => {
    await client.close();
    await sub.stop();
  });

  it('reports an HTTP error status with the sub-agent\'s plain-text body (gorilla\'s unknown method)', async () => {
    const error = await client.call('Test.Nope', { guest: { id: 'g' } }, signal, 2000).then(() => undefined, (e: Error) => e);
    expect(error?.message).to.match(/^Test\.Nope at http:\/\/127\.0\.0\.1:\d+\/_mistify_RPC_ answered HTTP 400: rpc: can't find method "Test\.Nope"$/);
  });

  it('reports a wrong path the same way', async () => {
    const other = new JsonRpcClient({ port: sub.port, path: '/elsewhere', maxPending: 1 });
    try {
      const error = await other.call('Test.Run', { guest: { id: 'g', metadata: {} } }, signal, 2000).then(() => undefined, (e: Error) => e);
      expect(error?.message).to.include('answered HTTP 404: no RPC endpoint at POST /elsewhere');
    } finally {
      await other.close();
    }
  });

  it('refuses a reply that is not JSON-RPC, or answers another call id', async () => {
    let reply = '';
    const server: Server = createServer((_req, res) => res.end(reply));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const odd = new JsonRpcClient({ port: (server.address() as AddressInfo).port, path: '/_mistify_RPC_', maxPending: 1 });
    try {
      reply = '<html>oops</html>';
      expect((await odd.call('A.B', {}, signal, 2000).catch((e: Error) => e)) as Error).to.have.property('message').that.includes('answered something that is not JSON: <html>oops</html>');
      reply = '{"hello":1}';
      expect(((await odd.call('A.B', {}, signal, 2000).catch((e: Error) => e)) as Error).message).to.include('which is not a JSON-RPC reply');
      reply = '{"result":{},"error":null,"id":999999}';
      expect(((await odd.call('A.B', {}, signal, 2000).catch((e: Error) => e)) as Error).message).to.include('answered call id 999999');
    } finally {
      await odd.close();
      await new Promise((r) => server.close(r));
    }
  });
});
