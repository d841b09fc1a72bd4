/**
 * The body of a tool thread (tool-threads.ts): runs the LXC programs the
 * main thread asks for and answers with what they printed. A fork happens
 * on the thread that asks for it, which waits there until the child has
 * exec'd; here that wait stalls this thread only.
 */
import { execFile } from 'node:child_process';
import { parentPort } from 'node:worker_threads';
import type { ToolAnswer, ToolRequest } from './tool-threads.js';

const running = new Map<number, AbortController>();

parentPort?.on('message', (request: ToolRequest) => {
  if (request.type === 'cancel') return void running.get(request.id)?.abort();
  const abort = new AbortController();
  running.set(request.id, abort);
  execFile(request.file, request.args, { timeout: request.timeoutMs, signal: abort.signal, encoding: 'utf8', maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
    running.delete(request.id);
    const answer: ToolAnswer = { id: request.id, stdout, stderr, error: error ? { message: error.message, code: (error as NodeJS.ErrnoException).code } : undefined };
    parentPort!.postMessage(answer);
  });
});
