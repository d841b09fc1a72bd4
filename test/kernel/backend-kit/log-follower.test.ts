/**
 * The backend kit's LogFollower on real files: follows appends, a file that
 * appears later, a rename rotation (virtlogd's), and rotates by copy and
 * truncate itself while a writer appends (LXC's console log, O_APPEND):
 * every byte handed on exactly once, in order; FILE.1 keeps the last bytes.
 */
import { expect } from 'chai';
import { appendFile, open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { LogFollower } from '../../../core/contract/index.js';
import { makeTempDir, removeDir, waitFor } from '../../support/agent.js';

describe('backend kit: LogFollower', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('hk-follow-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  function follow(file: string): Promise<{ follower: LogFollower; text: () => string }> {
    const chunks: Buffer[] = [];
    return LogFollower.start(file, (bytes) => chunks.push(bytes), (error) => chunks.push(Buffer.from(`ERROR ${error.message}`))).then((follower) => ({
      follower,
      text: () => Buffer.concat(chunks).toString(),
    }));
  }

  it('hands on what is appended after it started, from a file that appears later, and across a rename rotation', async () => {
    const file = path.join(dir, 'console.log');
    const { follower, text } = await follow(file);
    try {
      await appendFile(file, 'first\n');
      await waitFor(async () => text() === 'first\n', 5000, 'the first line');
      await appendFile(file, 'last-before-rename\n');
      await rename(file, `${file}.0`);
      await appendFile(file, 'in-new\n');
      await waitFor(async () => text() === 'first\nlast-before-rename\nin-new\n', 5000, 'both files in order');
    } finally {
      follower.stop();
    }
  });

  it('rotates by copy and truncate while a writer appends: each byte once, in order, the last maxBytes in FILE.1', async () => {
    const file = path.join(dir, 'console.log');
    await appendFile(file, 'before the follower\n');
    const { follower, text } = await follow(file);
    // The writer keeps the file open with O_APPEND, as LXC's monitor does.
    const writer = await open(file, 'a');
    const lines: string[] = [];
    let rotations = 0;
    try {
      for (let i = 0; i < 400; i++) {
        const line = `line-${i}-${'x'.repeat(40)}\n`;
        lines.push(line);
        await writer.write(line);
        if (i % 50 === 49 && (await follower.rotate(4096))) rotations++;
      }
      const expected = lines.join('');
      await waitFor(async () => text().length >= expected.length, 5000, 'every line');
      expect(text(), 'each byte once, in order (nothing from before the follower)').to.equal(expected);
      expect(rotations).to.be.greaterThan(2);
      expect((await stat(`${file}.1`)).size).to.equal(4096);
      const rotated = await readFile(`${file}.1`, 'utf8');
      const current = await readFile(file, 'utf8');
      expect(expected.endsWith(rotated + current), 'FILE.1 then FILE are the newest bytes, contiguous').to.equal(true);
      expect(await follower.rotate(4096), 'under the bound: nothing to do').to.equal(false);
    } finally {
      await writer.close();
      follower.stop();
    }
  });
});
