/**
 * The LXC programs this backend forks (lxc-start, lxc-stop, lxc-monitor),
 * found in one folder, and their failures as errors that say what failed
 * without host paths (job messages reach clients).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** What a host without LXC is told (the 501 of every container action). */
export const LXC_MISSING = 'container guests need LXC, which this host lacks: install the Debian package "lxc" (scripts/install-host-deps.sh does) and restart the agent';

export class LxcTools {
  constructor(private readonly binDir: string) {}

  /** Whether the programs are here (checked once, when the plugin is made). */
  installed(): boolean {
    return ['lxc-start', 'lxc-stop', 'lxc-monitor'].every((p) => existsSync(this.program(p)));
  }

  program(name: string): string {
    return path.join(this.binDir, name);
  }

  /** Runs `lxc-<tool> args`; rejects with what it printed (paths reduced to file names). */
  run(tool: string, args: string[], timeoutMs = 60_000, signal?: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.program(tool), args, { timeout: timeoutMs, signal, encoding: 'utf8', maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error(LXC_MISSING));
        const detail = lastLines(stderr || stdout || error.message);
        reject(new Error(`${tool} failed: ${redactPaths(detail)}`));
      });
    });
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
