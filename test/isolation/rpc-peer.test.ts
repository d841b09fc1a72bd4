/**
 * The MessagePack-RPC peer on real streams (a pair of PassThroughs stands
 * for the child's pipes): calls both ways, answers out of order, giving up,
 * and everything that must close the channel as a protocol error.
 */
import { expect } from 'chai';
import msgpack from 'msgpack-lite';
import { PassThrough } from 'node:stream';
import { MAX_MESSAGE_BYTES } from '../../core/isolation/msgpack-framing.js';
import { ProtocolError, RemoteError, RpcPeer, type RpcPeerOptions } from '../../core/isolation/rpc-peer.js';

/** Two peers wired to each other. */
function pair(left: Partial<RpcPeerOptions> = {}, right: Partial<RpcPeerOptions> = {}) {
  const toRight = new PassThrough();
  const toLeft = new PassThrough();
  const a = new RpcPeer({ methods: {}, ...left, input: toLeft, output: toRight });
  const b = new RpcPeer({ methods: {}, ...right, input: toRight, output: toLeft });
  return { a, b, toLeft, toRight };
}

/** One peer and the raw streams of its other side. */
function raw(options: Partial<RpcPeerOptions> = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  let closed: Error | undefined;
  const peer = new RpcPeer({ methods: {}, ...options, input, output, onClose: (reason) => (closed = reason) });
  const sent: unknown[] = [];
  output.pipe(msgpack.createDecodeStream()).on('data', (m: unknown) => sent.push(m));
  return { peer, input, sent, closed: () => closed };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

/** The error a promise rejects with; a promise that resolves fails the test. */
function failure(promise: Promise<unknown>): Promise<any> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe('isolation: MessagePack-RPC peer', () => {
  it('calls both ways and matches answers that come out of order', async () => {
    const { a } = pair(
      {},
      {
        methods: {
          slow: async ([x]) => {
            await new Promise((r) => setTimeout(r, 30));
            return `slow ${x}`;
          },
          fast: ([x]) => `fast ${x}`,
        },
      },
    );
    const slow = a.call('slow', [1]);
    const fast = a.call('fast', [2]);
    expect(await Promise.race([slow, fast])).to.equal('fast 2');
    expect(await slow).to.equal('slow 1');
  });

  it('delivers each message at once, without waiting for more bytes (the encoder flushes)', async () => {
    const { peer, sent } = raw();
    peer.notify('hello', [1]);
    await tick();
    expect(sent).to.deep.equal([[2, 'hello', [1]]]);
  });

  it('carries errors as {message, status}, and an unknown method as an error', async () => {
    const { a } = pair({}, { methods: { refuse: () => Promise.reject(Object.assign(new Error('no way'), { status: 409 })) } });
    const refused = await failure(a.call('refuse', []));
    expect(refused).to.be.instanceOf(RemoteError);
    expect(refused).to.include({ message: 'no way', status: 409 });
    const unknown = await failure(a.call('nope', []));
    expect(unknown.message).to.equal('unknown method "nope"');
  });

  it('gives up on a call when its signal aborts, and ignores the late answer', async () => {
    let release!: () => void;
    const abandoned: number[] = [];
    const { a } = pair({}, { methods: { wait: () => new Promise<string>((r) => (release = () => r('late'))) } });
    const controller = new AbortController();
    const call = a.call('wait', [], { signal: controller.signal, onAbandon: (id) => abandoned.push(id) });
    await tick();
    controller.abort(new Error('timed out'));
    expect((await failure(call)).message).to.equal('timed out');
    expect(abandoned).to.have.length(1);
    release();
    await tick();
    expect(a.closed, 'a late answer is no protocol error').to.equal(undefined);
    expect((await failure(a.call('wait', [], { timeoutMs: 20 }))).message).to.equal('no answer to "wait" within 20 ms');
  });

  for (const [what, bytes, expected] of [
    ['bytes that are not MessagePack', Buffer.from([0xc1]), /not MessagePack/],
    ['a value that is no array', msgpack.encode('hello'), /received "hello" where a MessagePack-RPC array belongs/],
    ['a top-level nil', msgpack.encode(null), /top-level nil/],
    ['a malformed request', msgpack.encode([0, 'x', 'm', []]), /malformed message/],
    ['an answer to a msgid never asked', msgpack.encode([1, 77, null, 'x']), /answer to msgid 77, which was never asked/],
  ] as const) {
    it(`closes as a protocol error on ${what}, failing calls in flight`, async () => {
      const { peer, input, closed } = raw();
      const pending = peer.call('anything', []);
      input.write(bytes);
      const error = await failure(pending);
      expect(error).to.be.instanceOf(ProtocolError);
      expect(error.message).to.match(expected);
      expect(closed()).to.equal(error);
    });
  }

  it('refuses to hold a message bigger than the limit', async () => {
    const { peer, input } = raw();
    const pending = peer.call('anything', []);
    // str32 header announcing 4 GiB, then more than the limit of its bytes.
    input.write(Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff]));
    const chunk = Buffer.alloc(8 * 1024 * 1024);
    for (let sent = 0; sent <= MAX_MESSAGE_BYTES && !peer.closed; sent += chunk.length) input.write(chunk);
    expect((await failure(pending)).message).to.include('a message larger than 64 MiB');
  });

  it('fails calls in flight when the other side closes', async () => {
    const { peer, input } = raw();
    const pending = peer.call('anything', []);
    input.end();
    expect((await failure(pending)).message).to.equal('the other side closed the channel');
  });
});
