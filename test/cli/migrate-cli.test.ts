/**
 * `hyperkern migrate` without a move: its command line (where to, exactly
 * once; the target's token only with its URL; exit 2 and one line, nothing
 * sent) and the live line a move shows (phase, bytes sent of the total and
 * left). The moves themselves, with the live display on a terminal and
 * Ctrl-C, are in test/migration/cli.test.ts (two agents, real QEMU).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { liveLine, type WatchedJob } from '../../cli/job-watch.js';
import { migrateBody } from '../../cli/migrate.js';
import { distRoot } from '../support/agent.js';

const exec = promisify(execFile);
const CLI = path.join(distRoot, 'cli/hyperkern.js');
/** An address nothing listens on: a usage error must be found before anything is sent. */
const env = { ...process.env, HYPERKERN_URL: 'http://127.0.0.1:9', XDG_CONFIG_HOME: '/nonexistent' };

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('CLI: hyperkern migrate, its command line and live line', function () {
  this.timeout(60_000);

  it('needs exactly one of --host and --target-url, and refuses --target-token with --host: exit 2, nothing sent', async () => {
    for (const [args, message] of [
      [['migrate', '5c03da40'], /where to\? give --host H .* or --target-url/],
      [['migrate', '5c03da40', '--host', 'b', '--target-url', 'http://127.0.0.1:1'], /--host .* or --target-url .*, not both/],
      [['migrate', '5c03da40', '--host', 'b', '--target-token', 'x'.repeat(20)], /--target-token goes with --target-url/],
      [['migrate', '5c03da40', '--host', 'b', '--bandwidth', 'lots'], /--bandwidth must be a number/],
    ] as const) {
      const run = await cli(...args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).to.equal(2);
      expect(run.stderr).to.match(message);
      expect(run.stderr, 'nothing was sent to the agent (it is not there)').to.not.match(/cannot reach/);
      expect(run.stderr.trim().split('\n'), 'one line').to.have.length(1);
    }
  });

  it('sends the fleet host, or the target URL with its token (flag, else HYPERKERN_TARGET_TOKEN)', () => {
    expect(migrateBody({ host: 'host-b', timeout: '300' })).to.deep.equal({ host: 'host-b' });
    expect(migrateBody({ targetUrl: 'http://10.0.0.2:8080', targetToken: 'flag-token', timeout: '300' }, { HYPERKERN_TARGET_TOKEN: 'env-token' })).to.deep.equal({ url: 'http://10.0.0.2:8080', token: 'flag-token' });
    expect(migrateBody({ targetUrl: 'http://10.0.0.2:8080', timeout: '300' }, { HYPERKERN_TARGET_TOKEN: 'env-token' })).to.deep.equal({ url: 'http://10.0.0.2:8080', token: 'env-token' });
    expect(migrateBody({ targetUrl: 'http://10.0.0.2:8080', bandwidth: '50', timeout: '300' }, {})).to.deep.equal({ url: 'http://10.0.0.2:8080', bandwidth: 50 });
  });

  it('shows the phase and the bytes sent of the total and left while a move runs', () => {
    const job: WatchedJob = {
      ID: 'a1b2c3d4-0000-4000-8000-000000000000',
      GuestID: '5c03da40-f9f4-43a0-b90f-def3ea376140',
      Action: 'migrate',
      Status: 'Running',
      Message: '',
      QueuedAt: '2026-12-06T12:00:00Z',
      StartedAt: '2026-12-06T12:00:00Z',
      UpdatedAt: '2026-12-06T12:00:01Z',
      Stage: 'migrate',
      Migration: { phase: 'disks', target: 'http://127.0.0.1:8081', bytesSent: 40 * 1048576, bytesLeft: 60 * 1048576, bytesTotal: 100 * 1048576 },
    };
    expect(liveLine(job, undefined, 3200)).to.equal('migrate 5c03da40: Running · phase disks · [##########--------------] 40.0 MiB of 100.0 MiB (40%), 60.0 MiB left · 3.2s');
    // The RAM's last passes send more than its size: the bar is full, never past 100 %.
    const memory = { ...job, Migration: { ...job.Migration!, phase: 'memory', bytesSent: 300 * 1048576, bytesLeft: 0, bytesTotal: 256 * 1048576 } };
    expect(liveLine(memory, undefined, 9000)).to.match(/phase memory · \[#{24}\] 300\.0 MiB of 256\.0 MiB \(100%\), 0\.0 MiB left · 9\.0s$/);
    // Before any byte: the phase alone.
    const preparing = { ...job, Migration: { ...job.Migration!, phase: 'preparing', bytesSent: 0, bytesLeft: 0, bytesTotal: 0 } };
    expect(liveLine(preparing, undefined, 100)).to.equal('migrate 5c03da40: Running · phase preparing · 0.1s');
  });
});
