/**
 * The LXC programs this backend forks (lxc-start, lxc-stop, lxc-monitor),
 * found in one folder, and their failures as errors that say what failed
 * without host paths (job messages reach clients). The short-lived ones run
 * from tool threads (tool-threads.ts), never forked on the main thread.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ToolThreads } from './tool-threads.js';

/** What a host without LXC is told (the 501 of every container action). */
export const LXC_MISSING = 'container guests need LXC, which this host lacks: install the Debian package "lxc" (scripts/install-host-deps.sh does) and restart the agent';

export class LxcTools {
  private readonly threads = new ToolThreads();

  constructor(private readonly binDir: string) {}

  /** Whether the programs are here (checked once, when the plugin is made). */
  installed(): boolean {
    return ['lxc-start', 'lxc-stop', 'lxc-monitor'].every((p) => existsSync(this.program(p)));
  }

  program(name: string): string {
    return path.join(this.binDir, name);
  }

  /** Runs `lxc-<tool> args` on a tool thread (tool-threads.ts); rejects with what it printed (paths reduced to file names). */
  async run(tool: string, args: string[], timeoutMs = 60_000, signal?: AbortSignal): Promise<string> {
    const { stdout, stderr, error } = await this.threads.run(this.program(tool), args, timeoutMs, signal);
    if (!error) return stdout;
    if (error.code === 'ENOENT') throw new Error(LXC_MISSING);
    throw new Error(`${tool} failed: ${redactPaths(lastLines(stderr || stdout || error.message))}`);
  }

  /** LXC's version (`lxc-start --version`), asked once at plugin start from this thread: a thread for one fork would cost more than the fork. */
  version(): Promise<string> {
    return new Promise((resolve) => {
      execFile(this.program('lxc-start'), ['--version'], { timeout: 10_000, encoding: 'utf8' }, (error, stdout) => resolve(error ? 'unknown' : stdout.trim()));
    });
  }

  /** Ends the tool threads (the plugin stops). */
  close(): Promise<void> {
    return this.threads.close();
  }
}

/** The last few lines of a tool's output: LXC prints its reason last. */
function lastLines(text: string, count = 3): string {
  return text.trim().split('\n').slice(-count).join('; ');
}

/** Host paths never reach clients: every absolute path becomes its last component. */
export function redactPaths(text: string): string {
  return text.replace(/\/[^\s"':;,]+/g, (p) => path.basename(p));
}
