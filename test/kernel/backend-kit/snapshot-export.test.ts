/**
 * The qcow2 snapshot export with the real qemu-img: the stream holds the
 * disk as it was at the snapshot, its size is the file's, the export file
 * is gone from the work dir while streaming, and stale exports are removed.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { exportQcow2Snapshot, removeStaleExports, SNAPSHOT_EXPORT_PREFIX } from '../../../core/contract/index.js';

const run = promisify(execFile);
const qemuImg = (args: string[]) => run('qemu-img', args);

describe('backend kit: qcow2 snapshot export', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hk-snapshot-export-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('streams a self-contained qcow2 of the snapshot, not of the disk now, from a file already unlinked', async () => {
    const disk = path.join(dir, 'disk.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', disk, '8M']);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 1M', disk]);
    await qemuImg(['snapshot', '-c', 's1', disk]);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x22 0 1M', disk]);
    const { stream, size } = await exportQcow2Snapshot(qemuImg, disk, 's1', dir);
    expect((await readdir(dir)).filter((n) => n.startsWith(SNAPSHOT_EXPORT_PREFIX)), 'unlinked once open').to.deep.equal([]);
    const copy = path.join(dir, 'copy.qcow2');
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    expect(bytes.length).to.equal(size);
    await writeFile(copy, bytes);
    await qemuImg(['check', '-q', copy]);
    const read = await run('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x11 0 1M', copy]);
    expect(read.stdout, 'the data of s1, not what was written after').to.not.include('Pattern verification failed');
    expect((await run('qemu-img', ['snapshot', '-l', copy])).stdout, 'no snapshot table in a download').to.equal('');
  });

  it('leaves nothing when qemu-img fails, and removes the exports a killed agent left', async () => {
    const failing = await exportQcow2Snapshot(qemuImg, path.join(dir, 'no-such.qcow2'), 's1', dir).catch((e: Error) => e);
    expect(failing).to.be.instanceOf(Error);
    const stale = path.join(dir, `${SNAPSHOT_EXPORT_PREFIX}0123456789ab.qcow2`);
    await writeFile(stale, 'half written');
    await removeStaleExports(dir);
    expect((await readdir(dir)).filter((n) => n.startsWith(SNAPSHOT_EXPORT_PREFIX))).to.deep.equal([]);
    await removeStaleExports(path.join(dir, 'missing'));
  });
});
