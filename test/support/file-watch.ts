/**
 * An inotify watch (inotifywait from Debian's inotify-tools) on host files a
 * test must prove nobody opened: any process's open or read of a watched
 * file is an event, whoever did it (the agent, qemu-img, libvirtd).
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface FileWatch {
  /** Ends the watch (by its pid) and answers every event seen, "FILE EVENT" each. */
  stop(): Promise<string[]>;
}

/** Watches `files` (which must exist) for opens and reads; resolves once the watches are set. */
export async function watchOpens(files: string[]): Promise<FileWatch> {
  const child: ChildProcess = spawn('inotifywait', ['-m', '-e', 'open,access', '--format', '%w %e', ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.once('error', (error) => reject(new Error(`inotifywait cannot run (apt-get install inotify-tools): ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`inotifywait ended (${code}): ${err}`)));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
      if (err.includes('Watches established')) resolve();
    });
  });
  const ended = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    async stop() {
      // An event the kernel queued just before the stop is still read: a short settle first.
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (child.exitCode === null) process.kill(child.pid!, 'SIGTERM');
      await ended;
      return out.split('\n').filter(Boolean);
    },
  };
}
