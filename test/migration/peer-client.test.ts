/**
 * callPeer (core/migration/peer-client.ts) against a real HTTP server on
 * loopback answering as a peer might, well or badly: JSON is read; a 4xx is
 * the peer's refusal with its words; a 5xx, a closed port, a body cut off
 * and a 2xx that is not JSON (something else on that port) are all
 * "unreachable" for the state machine (they say nothing about what the
 * peer did), never a generic error.
 */
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callPeer, PeerProtocolError, PeerRefused, PeerUnreachable } from '../../core/migration/peer-client.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

describe('migration: callPeer against a real HTTP server on loopback', () => {
  let server: Server;
  let url = '';
  let handle: Handler = (_req, res) => res.end();
  let seen: { method?: string; url?: string; authorization?: string; body: string } = { body: '' };

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen = { method: req.method, url: req.url, authorization: req.headers.authorization, body };
        handle(req, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const failure = async (run: () => Promise<unknown>): Promise<Error> => {
    try {
      await run();
    } catch (error) {
      return error as Error;
    }
    throw new Error('callPeer resolved; a failure was expected');
  };

  it('sends the bearer token and the JSON body, and reads a JSON answer', async () => {
    handle = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"phase":"committed"}');
    const answer = await callPeer<{ phase: string }>({ url: `${url}/`, token: 's3cret' }, { method: 'POST', path: '/migrations/m1/commit', body: { a: 1 } });
    expect(answer).to.deep.equal({ phase: 'committed' });
    expect(seen).to.deep.equal({ method: 'POST', url: '/migrations/m1/commit', authorization: 'Bearer s3cret', body: '{"a":1}' });
  });

  it('an empty 2xx is no answer body (undefined)', async () => {
    handle = (_req, res) => res.writeHead(204).end();
    expect(await callPeer({ url }, { method: 'DELETE', path: '/migrations/m1' })).to.equal(undefined);
    expect(seen.authorization, 'no token, no header').to.equal(undefined);
  });

  it('a 2xx that is not JSON is a protocol error, unreachable to the state machine, saying what came', async () => {
    handle = (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Welcome to nginx!</body></html>');
    const error = await failure(() => callPeer({ url }, { method: 'POST', path: '/migrations/m1/abort' }));
    expect(error).to.be.instanceOf(PeerProtocolError);
    expect(error).to.be.instanceOf(PeerUnreachable);
    expect(error.message).to.include('POST /migrations/m1/abort').and.include('answered 200 with a body that is not JSON').and.include('Welcome to nginx');
  });

  it('a 2xx whose body is cut off is unreachable (the answer never came whole)', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"phase":"comm');
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const error = await failure(() => callPeer({ url }, { method: 'POST', path: '/migrations/m1/commit' }));
    expect(error).to.be.instanceOf(PeerUnreachable);
    expect(error.message).to.include('cut off');
  });

  it("a 4xx is the peer's refusal with its status and message", async () => {
    handle = (_req, res) => res.writeHead(409, { 'content-type': 'application/json' }).end('{"message":"guest g1 already exists","code":409,"error":"conflict"}');
    const error = await failure(() => callPeer({ url }, { method: 'POST', path: '/migrations' }));
    expect(error).to.be.instanceOf(PeerRefused);
    expect((error as PeerRefused).status).to.equal(409);
    expect(error.message).to.equal('guest g1 already exists');
  });

  it('a 5xx (not 501) is unreachable, with the text it gave', async () => {
    handle = (_req, res) => res.writeHead(502).end('Bad Gateway');
    const error = await failure(() => callPeer({ url }, { method: 'GET', path: '/migrations/m1' }));
    expect(error).to.be.instanceOf(PeerUnreachable);
    expect(error.message).to.include('502').and.include('Bad Gateway');
  });

  it('a closed port and a silent peer are unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await failure(() => callPeer({ url: `http://127.0.0.1:${port}` }, { method: 'GET', path: '/migrations/m1' }));
    expect(refused).to.be.instanceOf(PeerUnreachable);
    expect(refused.message).to.include('ECONNREFUSED');
    handle = () => undefined;
    const silent = await failure(() => callPeer({ url }, { method: 'GET', path: '/migrations/m1', timeoutMs: 300 }));
    expect(silent).to.be.instanceOf(PeerUnreachable);
    expect(silent.message).to.include('no answer in time');
  });
});
