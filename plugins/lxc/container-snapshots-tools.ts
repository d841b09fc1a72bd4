/**
 * The host tools container snapshots run (cp, du, tar, lxc-info) and how
 * their failures read: job messages and HTTP answers reach clients, which
 * never see host paths, so every absolute path among a command's arguments
 * is replaced by its last name in what the error says.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { redactPaths } from './lxc-tools.js';
import { endingWithAgent, notExecuted } from './parent-death.js';

/** Copies and sizes of large layers take a while on a loaded host; the stage's own signal bounds them first. */
const TOOL_TIMEOUT_MS = 3600 * 1000;

export interface ToolRun {
  stdout: string;
}

/**
 * Runs `file` with `args`; an error names the tool and quotes its complaint
 * without host paths. The tool dies with the agent: a cp left running would
 * write on into a copy the agent's next start removes.
 */
export function runTool(file: string, args: string[], signal?: AbortSignal): Promise<ToolRun> {
  const [program, ...argv] = endingWithAgent([file, ...args], 'SIGKILL');
  return new Promise((resolve, reject) => {
    execFile(program!, argv, { signal, timeout: TOOL_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (!error) return resolve({ stdout });
      if (error.code === 'ENOENT' || notExecuted(error.code, stderr)) return reject(new Error(`${path.basename(file)} not found on this host; install it (Debian: coreutils, tar, lxc)`));
      if (error.name === 'AbortError') return reject(new Error(`${path.basename(file)} aborted: the stage timed out or the agent is stopping`));
      reject(new Error(`${path.basename(file)} failed: ${withoutPaths((stderr || stdout || error.message).trim(), args)}`));
    });
  });
}

/** `text` with each absolute path of `args` shown by its last name only. */
export function withoutPaths(text: string, args: string[]): string {
  let out = text;
  for (const arg of [...args].sort((a, b) => b.length - a.length)) {
    if (arg.startsWith('/') && arg.length > 1) out = out.replaceAll(arg, path.basename(arg));
  }
  // Whatever path a tool printed on its own (a file inside the layer) goes too.
  return redactPaths(out);
}
