/**
 * Runs a host tool (qemu-img, ip) and turns failure into an error that names
 * the command and quotes what it printed, so a job's message is actionable.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export function run(file: string, args: string[], options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { signal: options.signal, timeout: options.timeoutMs ?? 60000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          return reject(new Error(`${file} not found; install it (Debian: qemu-system-x86, qemu-utils, iproute2)`));
        }
        if (error.name === 'AbortError') return reject(new Error(`${redact(`${file} ${args.join(' ')}`, args)} aborted: the stage timed out or the agent is stopping`));
        const detail = (stderr || stdout || error.message).trim();
        reject(new Error(`${redact(`${file} ${args.join(' ')} failed: ${detail}`, args)}`));
      },
    );
  });
}

/**
 * The message reaches clients (job messages), which never see host paths:
 * each absolute path among the arguments (disk files, images) is shown by
 * its file name only, in the command and in what the tool printed.
 */
function redact(text: string, args: string[]): string {
  let out = text;
  for (const arg of args) if (arg.startsWith('/') && arg.length > 1) out = out.replaceAll(arg, path.basename(arg));
  return out;
}
