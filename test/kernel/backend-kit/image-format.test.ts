/**
 * The shared image check against real qemu-img: raw and self-contained
 * qcow2 pass; a VMDK descriptor naming a host file, a qcow2 naming a
 * backing or data file are refused without that file ever being opened
 * (an inotify watch on it says so), with the same answer whether the named
 * path exists or not, and no path in the answer.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { checkImageFile, identifyImageFormat, ImageRefused } from '../../../core/contract/index.js';
import { makeTempDir, removeDir } from '../../support/agent.js';
import { watchOpens } from '../../support/file-watch.js';
import { makeQcow2, makeRaw, qemuImg } from '../../support/image-files.js';

const exec = promisify(execFile);

/** A VMDK descriptor whose flat extent is `target`, as an attacker would upload it. */
export function vmdkNaming(target: string): string {
  return `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 2048 FLAT "${target}" 0\n`;
}

async function refusal(file: string): Promise<ImageRefused> {
  const error = await checkImageFile('qemu-img', file).then(() => undefined, (e: unknown) => e);
  expect(error, `${path.basename(file)} is refused`).to.be.instanceOf(ImageRefused);
  return error as ImageRefused;
}

describe('backend kit: image format check (real qemu-img, inotify watch)', function () {
  this.timeout(60_000);
  let dir: string;
  let secret: string;
  let missing: string;
  before(async () => {
    dir = await makeTempDir('hk-image-format-');
    secret = path.join(dir, 'secret');
    missing = path.join(dir, 'no-such-file');
    await writeFile(secret, 'root:$6$hash:19000:0:99999:7:::\n');
  });
  after(() => removeDir(dir));

  it('tells formats from their magic bytes: qcow2, raw, and every format qemu or libvirt would probe instead', () => {
    const qcow2 = Buffer.alloc(104);
    qcow2.write('QFI\xfb', 0, 'latin1');
    qcow2.writeUInt32BE(3, 4);
    expect(identifyImageFormat(qcow2)).to.equal('qcow2');
    qcow2.writeUInt32BE(1, 4);
    expect(identifyImageFormat(qcow2)).to.equal('qcow');
    const vdi = Buffer.alloc(512);
    vdi.writeUInt32LE(0xbeda107f, 0x40);
    expect(identifyImageFormat(vdi)).to.equal('vdi');
    const cases: [string, string][] = [
      ['KDMV\x01\0\0\0', 'vmdk'],
      ['COWD', 'vmdk'],
      ['vhdxfile', 'vhdx'],
      ['conectix', 'vpc'],
      ['QFI\0', 'qed'],
      ['LUKS\xba\xbe\0\x01', 'luks'],
      ['WithoutFreeSpace', 'parallels'],
      ['Bochs Virtual HD Image\0', 'bochs'],
      ['#!/bin/sh\n#V2.0 Format\nmodprobe cloop', 'cloop'],
      ['version=1\nRW 1 FLAT "/etc/shadow" 0\n', 'vmdk'],
      ['# comment\n  \r\n\tversion=3\r\n', 'vmdk'],
      ['\0'.repeat(1024), 'raw'],
      ['', 'raw'],
      ['sixteen bytes...', 'raw'],
      ['\xeb\x63\x90' + '\0'.repeat(507) + '\x55\xaa', 'raw'],
    ];
    for (const [bytes, format] of cases) expect(identifyImageFormat(Buffer.from(bytes, 'latin1')), JSON.stringify(bytes)).to.equal(format);
  });

  it('accepts raw and self-contained qcow2 with their virtual sizes', async () => {
    expect(await checkImageFile('qemu-img', await makeQcow2(dir, 'ok.qcow2', 64, 1))).to.deep.equal({ format: 'qcow2', virtualSize: 64 * 1024 * 1024 });
    expect(await checkImageFile('qemu-img', await makeRaw(dir, 'ok.raw', 2))).to.deep.equal({ format: 'raw', virtualSize: 2 * 1024 * 1024 });
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', path.join(dir, 'v2.qcow2'), '8M');
    expect(await checkImageFile('qemu-img', path.join(dir, 'v2.qcow2'))).to.deep.equal({ format: 'qcow2', virtualSize: 8 * 1024 * 1024 });
  });

  it('refuses a VMDK descriptor naming a host file without opening it, the same way whether the file exists', async () => {
    await writeFile(path.join(dir, 'existing.vmdk'), vmdkNaming(secret));
    await writeFile(path.join(dir, 'missing.vmdk'), vmdkNaming(missing));
    // The watch works: a probing qemu-img info (what the agent ran before) opens the named file.
    const control = await watchOpens([secret]);
    await exec('qemu-img', ['info', '-U', path.join(dir, 'existing.vmdk')]).catch(() => undefined);
    expect(await control.stop(), 'a probing qemu-img opens the extent (the watch sees it)').to.not.be.empty;
    const watch = await watchOpens([secret]);
    const existing = await refusal(path.join(dir, 'existing.vmdk'));
    const absent = await refusal(path.join(dir, 'missing.vmdk'));
    expect(await watch.stop(), 'the named host file is never opened').to.deep.equal([]);
    expect(existing.message).to.match(/format "vmdk" is not accepted/);
    expect(absent.message, 'no hint whether the named path exists').to.equal(existing.message);
    expect(existing.message).to.not.include(dir);
  });

  it('refuses a qcow2 naming a backing file or an external data file from its header, opening neither', async () => {
    const backed = path.join(dir, 'backed.qcow2');
    const backedMissing = path.join(dir, 'backed-missing.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', secret, backed, '1M');
    await qemuImg('create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', missing, backedMissing, '1M');
    const dataFile = path.join(dir, 'data.bin');
    const withData = path.join(dir, 'with-data.qcow2');
    const withDataMissing = path.join(dir, 'with-data-missing.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${dataFile}`, withData, '1M');
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${path.join(dir, 'gone.bin')}`, withDataMissing, '1M');
    await rm(path.join(dir, 'gone.bin'));
    const watch = await watchOpens([secret, dataFile]);
    const [a, b, c, d] = [await refusal(backed), await refusal(backedMissing), await refusal(withData), await refusal(withDataMissing)];
    expect(await watch.stop(), 'neither the backing nor the data file is opened').to.deep.equal([]);
    expect(a.message).to.match(/names a backing file/);
    expect(b.message).to.equal(a.message);
    expect(c.message).to.match(/external data file/);
    expect(d.message).to.equal(c.message);
    for (const e of [a, b, c, d]) expect(e.message).to.not.include(dir);
  });

  it('refuses a FIFO without waiting for a writer, and a corrupt qcow2 without naming a path', async () => {
    await exec('mkfifo', [path.join(dir, 'fifo')]);
    expect((await refusal(path.join(dir, 'fifo'))).message).to.match(/not a regular file/);
    const truncated = path.join(dir, 'truncated.qcow2');
    const header = Buffer.alloc(104);
    header.write('QFI\xfb', 0, 'latin1');
    header.writeUInt32BE(3, 4);
    header.writeUInt32BE(16, 20); // cluster_bits
    header.writeBigUInt64BE(1n << 40n, 24); // size
    header.writeBigUInt64BE(1n << 50n, 40); // l1_table_offset far past the end
    header.writeUInt32BE(16, 36);
    header.writeUInt32BE(104, 100);
    await writeFile(truncated, header);
    const corrupt = await refusal(truncated);
    expect(corrupt.message).to.match(/qemu-img cannot read the qcow2 image/);
    expect(corrupt.message).to.not.include(dir);
  });
});
