/**
 * A real terminal for CLI tests: a tmux server on its own socket runs one
 * command in a pane; capture-pane shows what a person would see.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class Terminal {
  private readonly socket = `hk-cli-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private sessions = 0;

  private tmux(...args: string[]): Promise<{ stdout: string }> {
    return run('tmux', ['-L', this.socket, '-f', '/dev/null', ...args]);
  }

  /**
   * Runs `command` in a new 160x40 pane; when it ends the pane prints
   * "EXIT=<code>" and stays open for capture. Returns the session name.
   */
  async run(command: string, env: Record<string, string>): Promise<string> {
    const name = `s${++this.sessions}`;
    const exports = Object.entries(env).map(([k, v]) => `${k}='${v.replace(/'/g, "'\\''")}'`).join(' ');
    await this.tmux('new-session', '-d', '-s', name, '-x', '160', '-y', '40', `env ${exports} ${command}; echo EXIT=$?; sleep 3600`);
    return name;
  }

  async capture(session: string): Promise<string> {
    return (await this.tmux('capture-pane', '-p', '-t', session)).stdout;
  }

  /** Types into the pane as a person would: tmux key names (`Enter`, `C-]`) or literal text. */
  async keys(session: string, ...keys: string[]): Promise<void> {
    await this.tmux('send-keys', '-t', session, ...keys);
  }

  /** Captures until `done` matches; returns every distinct screen seen, in order. */
  async watch(session: string, done: RegExp, timeoutMs: number): Promise<string[]> {
    const screens: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = await this.capture(session);
      if (screens[screens.length - 1] !== screen) screens.push(screen);
      if (done.test(screen)) return screens;
      if (Date.now() > deadline) throw new Error(`terminal did not show ${done} within ${timeoutMs} ms; last screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Ends the tmux server of this terminal (and the panes' commands). */
  async close(): Promise<void> {
    await this.tmux('kill-server').catch(() => undefined);
  }
}
