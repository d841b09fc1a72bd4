/**
 * The Go programs of the tests (test/go-client/, test/go-subagent/, stdlib
 * only; mistify's wire types, which both use, in test/go-mistify/), each built once per test process with the Debian golang-go toolchain, offline,
 * into a temp dir. goClient() runs one command of the client against an
 * agent and returns what the Go program decoded into mistify's Go types.
 */
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir, repoRoot } from './agent.js';

const run = promisify(execFile);

/** Offline and local: no module downloads, no toolchain switch; caches outside the repo. */
function goEnv(): NodeJS.ProcessEnv {
  const cache = path.join(tmpdir(), 'hyperkern-go-cache');
  return { ...process.env, GOCACHE: path.join(cache, 'build'), GOPATH: path.join(cache, 'gopath'), GOTOOLCHAIN: 'local', GOPROXY: 'off', GOFLAGS: '', CGO_ENABLED: '0' };
}

/** One stdlib-only Go program of test/, built once per test process into a temp dir. */
class GoProgram {
  private built: Promise<{ dir: string; binary: string }> | undefined;

  constructor(private readonly folder: string) {}

  build(): Promise<{ dir: string; binary: string }> {
    this.built ??= (async () => {
      const dir = await makeTempDir(`hyperkern-${this.folder}-`);
      const binary = path.join(dir, this.folder);
      try {
        await run('go', ['build', '-o', binary, '.'], { cwd: path.join(repoRoot, 'test', this.folder), env: goEnv(), timeout: 300_000 });
      } catch (error) {
        await removeDir(dir);
        const e = error as { code?: string; stderr?: string; message: string };
        throw new Error(e.code === 'ENOENT' ? 'go is not installed: apt-get install -y golang-go (scripts/install-host-deps.sh does)' : `go build failed: ${e.stderr || e.message}`);
      }
      return { dir, binary };
    })();
    return this.built;
  }

  async remove(): Promise<void> {
    if (!this.built) return;
    const { dir } = await this.built.catch(() => ({ dir: '' }));
    this.built = undefined;
    if (dir) await removeDir(dir);
  }
}

const client = new GoProgram('go-client');
/** The Go sub-agent of test/go-subagent (see test/support/go-subagent.ts). */
export const goSubAgentProgram = new GoProgram('go-subagent');

export function buildGoClient(): Promise<{ dir: string; binary: string }> {
  return client.build();
}

export function removeGoClient(): Promise<void> {
  return client.remove();
}

let token: string | undefined;

/** The bearer token the Go client sends from now on (undefined: none, as mistify's client). */
export function setGoClientToken(value: string | undefined): void {
  token = value;
}

/** Runs `hk-go-client URL ...args`; a failure carries the Go program's reason. */
export async function goClient(url: string, ...args: string[]): Promise<any> {
  const { binary } = await buildGoClient();
  try {
    const env = { ...process.env, HK_TOKEN: token ?? '' };
    const { stdout } = await run(binary, [url, ...args], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024, env });
    return JSON.parse(stdout);
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`Go client ${args.slice(0, 2).join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}
