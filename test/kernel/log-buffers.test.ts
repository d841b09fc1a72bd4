/**
 * The logger reads sonic-boom's private state (core/log-buffers.ts). These
 * fail, naming what moved, when an upgrade of sonic-boom changes it: the
 * package is pinned exactly, and its fields are read as the logger reads
 * them, on a destination made as the logger makes it.
 */
import { openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect } from 'chai';
import { missingInternals, pendingBytes, writeOnce } from '../../core/log-buffers.js';
import { newLogDestination } from '../../core/logger.js';
import { makeTempDir, removeDir, repoRoot } from '../support/agent.js';

const require = createRequire(import.meta.url);

describe("logger: sonic-boom's internals", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('hyperkern-log-buffers-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('sonic-boom is pinned exactly in package.json, and that release is the one installed', () => {
    const pinned = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies['sonic-boom'];
    expect(pinned, 'an exact version: log-buffers.ts reads private fields').to.match(/^\d+\.\d+\.\d+$/);
    expect((require('sonic-boom/package.json') as { version: string }).version).to.equal(pinned);
  });

  it('a destination made as the logger makes it has the fields log-buffers.ts reads, and they hold what it expects', () => {
    const file = path.join(dir, 'log');
    const fd = openSync(file, 'w');
    const destination = newLogDestination(fd, () => false);
    try {
      expect(missingInternals(destination), 'private fields of sonic-boom that moved').to.deep.equal([]);
      expect(pendingBytes(destination)).to.equal(0);
      // Below the batch size: held, not written.
      const lines = ['{"a":1}\n', '{"b":"é"}\n', '{"c":3}\n'].map((l) => Buffer.from(l));
      for (const line of lines) destination.write(line as unknown as string);
      expect(pendingBytes(destination), 'bytes waiting').to.equal(Buffer.concat(lines).length);
      expect(readFileSync(file, 'utf8'), 'nothing written yet').to.equal('');
      // The exit path: one synchronous write of exactly what is held, then
      // the lines the logger had not handed over yet.
      const notHandedOver = Buffer.from('{"d":4}\n');
      writeOnce(destination, notHandedOver);
      expect(readFileSync(file, 'utf8')).to.equal(Buffer.concat([...lines, notHandedOver]).toString());
    } finally {
      // Closes fd too.
      destination.destroy();
    }
  });
});
