/**
 * The access log formats its line itself (core/http/access-log.ts): the
 * line must be exactly what pino writes for the same fields, so log
 * readers see one format whichever path wrote it.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { accessLine } from '../../core/http/access-log.js';
import { logLineFormat } from '../../core/logger.js';

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
});
