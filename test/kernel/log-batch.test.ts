/**
 * The log's batch (core/log-batch.ts): batches are used again only once
 * every byte of them was written, never while the destination still holds
 * them; a batch the destination dropped is free at once.
 */
import { once } from 'node:events';
import { openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LogBatch } from '../../core/log-batch.js';
import { pendingBytes } from '../../core/log-buffers.js';
import { LOG_BATCH_BYTES, newLogDestination } from '../../core/logger.js';
import { makeTempDir, removeDir } from '../support/agent.js';

describe('log batch', () => {
  it('uses a batch again only after all of its bytes were written', () => {
    const sent: Buffer[] = [];
    const batch = new LogBatch(16, 64, (bytes) => sent.push(bytes));
    const first = batch.bytes;
    batch.writeString('0123456789abcdef\n');
    expect(sent, 'a full batch is handed over').to.have.length(1);
    const second = batch.bytes;
    expect(second === first).to.equal(false);
    batch.writeString('ghijklmnopqrstuv\n');
    expect(sent).to.have.length(2);
    // 17 bytes of the first batch written less one: it is still the destination's.
    batch.written(16);
    batch.writeString('wxyz0123456789ab\n');
    expect(batch.bytes === first, 'a batch not wholly written is never reused').to.equal(false);
    batch.written(1 + 17 + 17);
    batch.writeString('ABCDEFGHIJKLMNOP\n');
    expect(batch.bytes === first || batch.bytes === second, 'a written batch is used again').to.equal(true);
    expect(sent.map((b) => b.toString())).to.deep.equal(['0123456789abcdef\n', 'ghijklmnopqrstuv\n', 'wxyz0123456789ab\n', 'ABCDEFGHIJKLMNOP\n']);
  });

  it('takes a dropped batch back at once, and keeps counting the rest right', () => {
    const sent: Buffer[] = [];
    let drop = false;
    const batch = new LogBatch(16, 64, (bytes) => {
      if (drop) batch.dropped(bytes);
      else sent.push(bytes);
    });
    batch.writeString('first line 12345\n');
    const held = sent[0];
    drop = true;
    const dropped = batch.bytes;
    batch.writeString('dropped line 123\n');
    drop = false;
    batch.writeString('third line 12345\n');
    expect(sent.map((b) => b.toString())).to.deep.equal(['first line 12345\n', 'third line 12345\n']);
    expect(batch.bytes === dropped, 'the dropped batch is the next one').to.equal(true);
    // The dropped bytes are not waited for: once the first and third lines are written, their batches are free.
    const third = sent[1].buffer;
    batch.written(held.length + sent[1].length);
    batch.writeString('fourth line 1234\n');
    expect(sent).to.have.length(3);
    expect(batch.bytes.buffer === held.buffer || batch.bytes.buffer === third, 'a written batch is used again').to.equal(true);
  });

  describe('on a real destination', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await makeTempDir('hyperkern-log-batch-');
    });
    afterEach(async () => {
      await removeDir(dir);
    });

    it('writes every line whole, in order, with its batches reused', async () => {
      const file = path.join(dir, 'log');
      const fd = openSync(file, 'w');
      const destination = newLogDestination(fd, () => true);
      // The logger's own sizes: sonic-boom writes each batch as it comes.
      const batch = new LogBatch(LOG_BATCH_BYTES, LOG_BATCH_BYTES + 16 * 1024, (bytes) => void destination.write(bytes as unknown as string));
      destination.on('write', (n: number) => batch.written(n));
      const seen = new Set<ArrayBufferLike>();
      const lines: string[] = [];
      for (let i = 0; i < 60_000; i++) {
        const line = `{"n":${i},"pad":"${'x'.repeat(i % 97)}"}\n`;
        lines.push(line);
        batch.writeString(line);
        seen.add(batch.bytes.buffer);
        // The event loop turns while the batch before is written, as it does under load.
        if (pendingBytes(destination) >= LOG_BATCH_BYTES) await once(destination, 'drain');
      }
      batch.handOver();
      // sonic-boom's flush answers once at most minLength bytes wait: until none do.
      while (pendingBytes(destination) > 0) await new Promise<void>((resolve) => destination.flush(() => resolve()));
      destination.destroy();
      const text = readFileSync(file, 'utf8');
      const want = lines.join('');
      let at = 0;
      while (at < want.length && text[at] === want[at]) at++;
      expect(at, `first difference at ${at} of ${want.length} (${text.length} written): ${JSON.stringify(text.slice(at - 40, at + 80))}`).to.equal(want.length);
      expect(text).to.equal(want);
      expect(seen.size, 'batches allocated for ~4 MB of lines in 64 KiB batches').to.be.at.most(4);
    });
  });
});
