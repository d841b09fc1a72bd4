/**
 * The Go mistify sub-agent of test/go-subagent (mistify-agent-libvirt's
 * method names, answers encoded by encoding/json with mistify's tags), as a
 * child process: started on a free loopback port, stopped by closing its
 * stdin (it exits then), killed by its PID if it does not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { goSubAgentProgram } from './go-client.js';

export class GoSubAgent {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(): Promise<GoSubAgent> {
    const { binary } = await goSubAgentProgram.build();
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! });
    const first = await Promise.race([
      once(lines, 'line').then(([line]) => String(line)),
      once(child, 'exit').then(([code]) => `exited with ${code}`),
    ]);
    lines.close();
    const port = Number(/^listening on 127\.0\.0\.1:(\d+)$/.exec(first)?.[1]);
    if (!port) {
      child.kill('SIGKILL');
      throw new Error(`the Go sub-agent did not start: ${first}`);
    }
    return new GoSubAgent(child, port);
  }

  /** The methods called so far, in order (`Libvirt.Create`...). */
  async calls(): Promise<string[]> {
    const res = await fetch(`http://127.0.0.1:${this.port}/_calls`);
    return (await res.json()) as string[];
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  static async remove(): Promise<void> {
    await goSubAgentProgram.remove();
  }
}
