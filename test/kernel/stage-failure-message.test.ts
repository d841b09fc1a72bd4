/**
 * A stage that lets a real Node file-system error through: the failure the
 * client sees names the error's code, call and file, never the host path,
 * in-process and across the isolation wire alike.
 */
import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runStage } from '../../core/plugins/stage-runner.js';
import { toWireError } from '../../core/isolation/rpc-peer.js';
import type { StageHandle } from '../../core/plugins/stage-handle.js';
import type { Logger } from '../../core/contract/plugin-api.js';

const silent = { child: () => silent, info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

describe('stage failure messages', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hk-stage-failure-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('tells a file-system error by code, call and file name, without the host path; other errors keep their message', async () => {
    const missing = path.join(dir, 'plugins', 'qemu', 'guest-1', 'disk.qcow2');
    const handle = (fail: () => Promise<never>): StageHandle => ({ name: 'test.create', plugin: 'test', kind: 'action', call: fail });
    const stage = (fail: () => Promise<never>) => ({ handle: handle(fail), args: {}, timeoutMs: 10_000 });
    const request = { guest: { id: 'guest-1' }, action: 'create', args: {} } as never;
    const failed = await runStage(stage(() => readFile(missing) as Promise<never>), request, { log: silent }).catch((e: Error & { code?: string }) => e);
    expect(failed).to.be.instanceOf(Error);
    const message = (failed as Error).message;
    expect(message).to.equal('stage test.create failed: ENOENT (open of disk.qcow2)');
    expect(message).to.not.include(dir);
    expect(((failed as Error).cause as Error).message, 'the log keeps the whole error').to.include(missing);
    // An isolated plugin's error crosses to the kernel the same way.
    const inChild = await readFile(missing).catch((e: Error) => e);
    expect(toWireError(inChild).message).to.equal('ENOENT (open of disk.qcow2)');
    const plain = await runStage(stage(async () => { throw new Error('qemu-img: image is locked'); }), request, { log: silent }).catch((e: Error) => e);
    expect((plain as Error).message).to.equal('stage test.create failed: qemu-img: image is locked');
  });
});
