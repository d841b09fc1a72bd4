/**
 * Every refused upload is an HTTP answer, on bare sockets against the real
 * agent (in-process, real HTTP on loopback): over the size limit (with
 * Content-Length and chunked), larger than a small tmpfs's free space
 * (announced and not), each arrives as a whole JSON answer while the
 * client is still sending, the connection ends with a FIN, never a reset,
 * and a client's next request is answered. A small refused body is read to
 * its end and its keep-alive connection carries the next request.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'undici';
import { makeTempDir, removeDir } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig, withImages } from '../support/configs.js';
import { exchangeOn, rawExchange, type RawExchange } from '../support/raw-http.js';

const exec = promisify(execFile);
const MIB = 1024 * 1024;

function expectWholeJsonAnswer(exchange: RawExchange, status: number, message: RegExp): void {
  expect(exchange.ending, 'the connection was not reset under the answer').to.not.equal('reset');
  expect(exchange.answer, 'a whole HTTP answer arrived').to.not.equal(undefined);
  expect(exchange.answer!.status, JSON.stringify(exchange.answer!.body)).to.equal(status);
  expect(exchange.answer!.body).to.include({ code: status });
  expect(exchange.answer!.body.message).to.match(message);
  expect(exchange.answer!.body.error).to.match(/^HK_ERR_/);
}

describe('refused uploads are answered (bare sockets, real HTTP)', function () {
  this.timeout(120_000);
  let work: string;
  let tiny: string | undefined;
  const agents = agentsPerTest();

  before(async function () {
    work = await makeTempDir('hk-upload-answers-');
  });
  after(async () => {
    if (tiny) await exec('umount', [tiny]).catch(() => exec('umount', ['-l', tiny!]));
    await removeDir(work);
  });

  const limitedAgent = (imagesDir: string, maxImageSizeMiB: number) =>
    agents.inProcess({ config: withImages(simulatorConfig(), { imagesDir, maxImageSizeMiB }), env: { HYPERKERN_LOG_LEVEL: 'warn' } });

  it('answers 413 to an upload over maxImageSizeMiB, with Content-Length and chunked, and closes without a reset', async () => {
    const dir = path.join(work, 'limit');
    const agent = await limitedAgent(dir, 2);
    const announced = await rawExchange(agent.url, 'PUT', '/images/big', { bytes: 16 * MIB, contentLength: true });
    expectWholeJsonAnswer(announced, 413, /over the limit of 2 MiB/);
    expect(announced.answer!.headers.connection, 'a body that is not read closes its connection').to.equal('close');
    expect(announced.ending).to.equal('closed');
    const chunked = await rawExchange(agent.url, 'PUT', '/images/big', { bytes: 16 * MIB, contentLength: false });
    expectWholeJsonAnswer(chunked, 413, /larger than the limit/);
    expect(chunked.ending).to.equal('closed');
    expect(await readdir(dir), 'nothing kept').to.deep.equal([]);
    // undici (what fetch uses) on one connection: the refused upload, then the next request.
    const client = new Client(agent.url, { pipelining: 1 });
    try {
      const refused = await client.request({ method: 'PUT', path: '/images/big', body: Buffer.alloc(8 * MIB), headers: { 'content-type': 'application/octet-stream' } });
      expect(refused.statusCode).to.equal(413);
      expect(((await refused.body.json()) as { code: number }).code).to.equal(413);
      const next = await client.request({ method: 'GET', path: '/images' });
      expect(next.statusCode).to.equal(200);
      await next.body.dump();
    } finally {
      await client.close();
    }
  });

  it('reads a small refused body to its end, so its keep-alive connection carries the next request', async () => {
    const agent = await limitedAgent(path.join(work, 'small'), 1);
    for (const contentLength of [true, false]) {
      const first = await rawExchange(agent.url, 'PUT', '/images/small', { bytes: 2 * MIB, contentLength });
      expectWholeJsonAnswer(first, 413, /limit/);
      expect(first.ending, `${contentLength ? 'Content-Length' : 'chunked'}: kept open`).to.equal('open');
      const next = await exchangeOn(first.socket, 'PUT', `/images/small?sha256=${'1'.repeat(64)}`, { bytes: 4096, contentLength: true });
      expectWholeJsonAnswer(next, 422, /sha256 mismatch/);
      first.socket.destroy();
    }
  });

  it('answers a JSON body over bodyLimit with 413, announced or chunked, without a reset', async () => {
    const agent = await limitedAgent(path.join(work, 'json'), 64);
    for (const contentLength of [true, false]) {
      const exchange = await rawExchange(agent.url, 'POST', '/guests', { bytes: 16 * MIB, contentLength, contentType: 'application/json' });
      expectWholeJsonAnswer(exchange, 413, /request body too large/);
      const wrongType = await rawExchange(agent.url, 'POST', '/guests', { bytes: 16 * MIB, contentLength });
      expectWholeJsonAnswer(wrongType, 415, /bodies are JSON/);
    }
  });

  describe('on a small tmpfs that fills', function () {
    before(async function () {
      if (process.getuid?.() !== 0) return this.skip(); // mounting a tmpfs needs root
      tiny = path.join(work, 'tiny');
      await mkdir(tiny);
      await exec('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', tiny]);
    });

    it('answers an upload larger than the free space, announced or not, every time, and keeps nothing', async () => {
      const agent = await limitedAgent(tiny!, 64);
      const announced = await rawExchange(agent.url, 'PUT', '/images/huge', { bytes: 8 * MIB, contentLength: true });
      expectWholeJsonAnswer(announced, 502, /bytes free, the image needs 8388608/);
      // ENOSPC mid-body: before, about a third of these answers were lost to a reset.
      for (let i = 0; i < 12; i++) {
        const filled = await rawExchange(agent.url, 'PUT', '/images/huge', { bytes: 8 * MIB, contentLength: false });
        expectWholeJsonAnswer(filled, 502, /file system is full \(ENOSPC\); nothing was kept/);
        expect(filled.answer!.body.message).to.not.include(tiny!);
      }
      expect(await readdir(tiny!), 'nothing kept on the full file system').to.deep.equal([]);
    });
  });
});
