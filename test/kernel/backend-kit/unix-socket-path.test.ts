/** The unix socket path limit, checked before a bind that would fail without saying why. */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkUnixSocketPath, MAX_UNIX_SOCKET_PATH } from '../../../core/contract/index.js';

describe('backend kit: unix socket path limit', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hk-sock-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A socket path in `dir` of exactly `bytes` bytes. */
  const pathOf = (bytes: number) => path.join(dir, 's'.repeat(bytes - dir.length - 1));

  async function listen(socketPath: string): Promise<void> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  it('accepts the longest path the kernel binds', async () => {
    const longest = pathOf(MAX_UNIX_SOCKET_PATH);
    expect(() => checkUnixSocketPath(longest)).to.not.throw();
    await listen(longest);
  });

  it('refuses one byte more, naming the length and the fix but not the host path', () => {
    const tooLong = pathOf(MAX_UNIX_SOCKET_PATH + 1);
    expect(() => checkUnixSocketPath(tooLong, 'QMP socket')).to.throw(
      `QMP socket path (under the data dir) is ${MAX_UNIX_SOCKET_PATH + 1} bytes, longer than the ${MAX_UNIX_SOCKET_PATH} bytes unix sockets allow; configure a shorter dataDir`,
    );
  });

  it('counts bytes, not characters', () => {
    const multiByte = path.join(dir, 'é'.repeat(Math.ceil((MAX_UNIX_SOCKET_PATH - dir.length) / 2)));
    expect(multiByte.length).to.be.at.most(MAX_UNIX_SOCKET_PATH);
    expect(() => checkUnixSocketPath(multiByte)).to.throw(/unix sockets allow/);
  });
});
