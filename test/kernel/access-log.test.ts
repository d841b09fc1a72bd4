/**
 * The access log formats its line itself (core/http/access-log.ts): the
 * line must be exactly what pino writes for the same fields, so log
 * readers see one format whichever path wrote it.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { accessLine } from '../../core/http/access-log.js';
import { createLogger, LOG_BATCH_BYTES, logLineFormat } from '../../core/logger.js';
import { makeTempDir, removeDir } from '../support/agent.js';

function memoryLogger(level: string) {
  const lines: string[] = [];
  const log = pino(logLineFormat(level), { write: (line: string) => void lines.push(line) });
  return { log, lines };
}

describe('access log line', () => {
  it("is byte for byte pino's line for the same fields, escaping included", () => {
    const { log, lines } = memoryLogger('info');
    const child = log.child({ plugin: 'edge-test' });
    const write = accessLine(child);
    // A URL with characters JSON must escape: quotes, backslash, control and non-ASCII.
    const url = '/guests?name="a\\b"&x=\u0001&y=ü';
    write('trace-me-42', 'GET', url, 404, 0.37);
    child.info({ reqId: 'trace-me-42', method: 'GET', url, status: 404, ms: 0.37 }, 'request');
    expect(lines).to.have.length(2);
    // Both lines read the cached time; a millisecond may pass between them.
    const [ours, pinos] = lines.map((l) => l.replace(/"time":"[^"]+"/, '"time":"T"'));
    expect(ours).to.equal(pinos);
    expect(JSON.parse(lines[0])).to.include({ level: 'info', name: 'hyperkern', plugin: 'edge-test', reqId: 'trace-me-42', url, status: 404, ms: 0.37, msg: 'request' });
  });

  it('writes nothing when the level is above info', () => {
    const { log, lines } = memoryLogger('warn');
    accessLine(log)('id-1', 'GET', '/guests', 200, 1);
    expect(lines).to.deep.equal([]);
  });

  describe("on the agent's own log (the line encoded straight into the batch)", () => {
    let dir: string;
    beforeEach(async () => {
      dir = await makeTempDir('hyperkern-access-log-');
    });
    afterEach(async () => {
      await removeDir(dir);
    });

    /** The agent's logger writing to a file: what `write` logs, next to pino's own line for the same fields. */
    async function linesOf(write: (log: pino.Logger) => void): Promise<string[]> {
      const file = path.join(dir, 'log');
      const fd = openSync(file, 'w');
      try {
        const output = createLogger('info', fd);
        write(output.log);
        expect(await output.close(5000), 'every line written').to.equal(true);
      } finally {
        closeSync(fd);
      }
      return readFileSync(file, 'utf8').split('\n').filter(Boolean);
    }

    const requests: Array<[string, string, string, number, number]> = [
      ['0b6c3a52-8f0e-4c1e-9d7a-3f2b1c0d9e8f', 'GET', '/guests/8803f7db-e83a-4145-9324-9927443f6a19', 200, 0.01],
      ['client.id:42', 'DELETE', '/guests/x?wait=30&a=b%20c', 404, 12.5],
      ['id-3', 'POST', '/guests/y/reboot', 503, 1234],
      ['id-4', 'GET', '/', 401, 0],
      // Escaped or not ASCII: the string path, the same bytes.
      ['id-5', 'GET', '/guests?name="a\\b"&x=\u0001&y=ü', 400, 0.37],
      ['id-6', 'GET', '/guests/\u007f', 404, 0.5],
    ];

    for (const bindings of [undefined, { plugin: 'edge-test', host: 'hôte' }]) {
      it(`is byte for byte pino's line, escaping included (${bindings ? 'a child logger' : 'the root logger'})`, async () => {
        const asStrings: string[] = [];
        const lines = await linesOf((root) => {
          const log = bindings ? root.child(bindings) : root;
          const write = accessLine(log);
          // Which access lines went through the string path.
          const stream = (log as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym];
          const writeString = stream.write;
          let inAccessLine = false;
          stream.write = (line) => {
            if (inAccessLine) asStrings.push(line);
            writeString(line);
          };
          for (const [reqId, method, url, status, ms] of requests) {
            inAccessLine = true;
            write(reqId, method, url, status, ms);
            inAccessLine = false;
            log.info({ reqId, method, url, status, ms }, 'request');
          }
          stream.write = writeString;
        });
        expect(asStrings.map((line) => JSON.parse(line).reqId), 'access lines written as strings').to.deep.equal(['id-5', 'id-6']);
        expect(lines).to.have.length(requests.length * 2);
        const sameTime = (line: string) => line.replace(/"time":"[^"]+"/, '"time":"T"');
        for (let i = 0; i < requests.length; i++) {
          expect(sameTime(lines[2 * i]), `request ${i}`).to.equal(sameTime(lines[2 * i + 1]));
          const [reqId, method, url, status, ms] = requests[i];
          expect(JSON.parse(lines[2 * i])).to.include({ level: 'info', name: 'hyperkern', reqId, method, url, status, ms, msg: 'request' });
        }
      });
    }

    it('loses no line across batches, and each line is whole', async () => {
      const count = Math.ceil((3 * LOG_BATCH_BYTES) / 200);
      const lines = await linesOf((log) => {
        const write = accessLine(log);
        for (let i = 0; i < count; i++) write(`id-${i}`, 'GET', `/guests/${'g'.repeat(i % 300)}`, 200, i / 100);
      });
      expect(lines).to.have.length(count);
      lines.forEach((line, i) => expect(JSON.parse(line)).to.include({ reqId: `id-${i}`, url: `/guests/${'g'.repeat(i % 300)}`, ms: i / 100 }));
    });

    it('writes nothing when the level is above info', async () => {
      const lines = await linesOf((log) => {
        log.level = 'warn';
        accessLine(log)('id-1', 'GET', '/guests', 200, 1);
      });
      expect(lines).to.deep.equal([]);
    });
  });
});
