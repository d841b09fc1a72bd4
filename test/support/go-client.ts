/**
 * The Go client of the conformance suite (test/go-client/, stdlib only),
 * built once per test process with the Debian golang-go toolchain, offline,
 * into a temp dir. Each call runs one command of it against an agent and
 * returns what the Go program decoded into mistify's Go types.
 */
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir, repoRoot } from './agent.js';

const run = promisify(execFile);
const SOURCE = path.join(repoRoot, 'test', 'go-client');

let built: Promise<{ dir: string; binary: string }> | undefined;

/** Offline and local: no module downloads, no toolchain switch; caches outside the repo. */
function goEnv(): NodeJS.ProcessEnv {
  const cache = path.join(tmpdir(), 'hyperkern-go-cache');
  return { ...process.env, GOCACHE: path.join(cache, 'build'), GOPATH: path.join(cache, 'gopath'), GOTOOLCHAIN: 'local', GOPROXY: 'off', GOFLAGS: '', CGO_ENABLED: '0' };
}

export function buildGoClient(): Promise<{ dir: string; binary: string }> {
  built ??= (async () => {
    const dir = await makeTempDir('hyperkern-go-client-');
    const binary = path.join(dir, 'hk-go-client');
    try {
      await run('go', ['build', '-o', binary, '.'], { cwd: SOURCE, env: goEnv(), timeout: 300_000 });
    } catch (error) {
      await removeDir(dir);
      const e = error as { code?: string; stderr?: string; message: string };
      throw new Error(e.code === 'ENOENT' ? 'go is not installed: apt-get install -y golang-go (scripts/install-host-deps.sh does)' : `go build failed: ${e.stderr || e.message}`);
    }
    return { dir, binary };
  })();
  return built;
}

export async function removeGoClient(): Promise<void> {
  if (!built) return;
  const { dir } = await built.catch(() => ({ dir: '' }));
  built = undefined;
  if (dir) await removeDir(dir);
}

/** Runs `hk-go-client URL ...args`; a failure carries the Go program's reason. */
export async function goClient(url: string, ...args: string[]): Promise<any> {
  const { binary } = await buildGoClient();
  try {
    const { stdout } = await run(binary, [url, ...args], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
    return JSON.parse(stdout);
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`Go client ${args.slice(0, 2).join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}
