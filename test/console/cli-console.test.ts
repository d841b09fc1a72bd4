/**
 * `hyperkern console ID` in a real terminal (tmux) against a real agent
 * (simulator, auth on): it shows the guest's prompt, runs a command, `Ctrl-]`
 * then `q` detaches with exit 0, and the terminal's settings are what they
 * were before (raw mode undone); `--log` prints the log; a refusal is the
 * agent's one-line message.
 */
import path from 'node:path';
import { expect } from 'chai';
import { distRoot } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { Terminal } from '../cli/terminal.js';

const TOKEN = 'cli-console-token-0123456789';
const CLI = `${process.execPath} ${path.join(distRoot, 'cli/hyperkern.js')}`;
const auth = { authorization: `Bearer ${TOKEN}` };

describe('CLI: hyperkern console in a terminal', function () {
  this.timeout(120_000);
  const agent = suiteAgent(() => ({ config: simulatorConfig({ auth: { tokens: [TOKEN] } }) }));
  let terminal: Terminal;
  let env: Record<string, string>;

  before(() => {
    env = { HYPERKERN_URL: agent.url, HYPERKERN_TOKEN: TOKEN, XDG_CONFIG_HOME: '/nonexistent' };
    terminal = new Terminal();
  });
  after(async () => {
    await terminal?.close();
  });

  it('shows the prompt, runs a command, detaches with Ctrl-] q and restores the terminal', async () => {
    const created = await agent.request('POST', '/guests?wait=30', { memory: 64 }, auth);
    expect(created.status, created.text).to.equal(200);
    const id = (created.body as { id: string }).id;
    // The shell around it compares the terminal's settings before and after.
    const session = await terminal.run(`sh -c 'S=$(stty -g); ${CLI} console ${id.slice(0, 8)}; echo CODE=$?; [ "$(stty -g)" = "$S" ] && echo TTY=RESTORED || echo TTY=CHANGED'`, env);
    await terminal.watch(session, /Ctrl-\] then q detaches/, 30_000);
    await terminal.keys(session, 'Enter');
    await terminal.watch(session, new RegExp(`sim-${id.slice(0, 8)}\\$`), 30_000);
    await terminal.keys(session, '-l', 'echo hello-console');
    await terminal.keys(session, 'Enter');
    await terminal.watch(session, /^hello-console\s*$/m, 30_000);
    await terminal.keys(session, 'C-]');
    await terminal.keys(session, 'q');
    const screens = await terminal.watch(session, /EXIT=\d+/, 30_000);
    const last = screens[screens.length - 1];
    expect(last).to.match(/detached from the console of guest/);
    expect(last).to.match(/CODE=0/);
    expect(last, 'raw mode undone').to.match(/TTY=RESTORED/);

    const log = await terminal.run(`${CLI} console ${id} --log`, env);
    const logScreen = (await terminal.watch(log, /EXIT=\d+/, 30_000)).at(-1)!;
    expect(logScreen).to.match(new RegExp(`guest ${id} boots \\(start\\)`));
    expect(logScreen).to.match(/hello-console/);
    expect(logScreen).to.match(/EXIT=0/);
  });

  it('a refusal is the agent\'s message on one line, and the terminal is left as it was', async () => {
    const session = await terminal.run(`sh -c 'S=$(stty -g); ${CLI} console no-such-guest; echo CODE=$?; [ "$(stty -g)" = "$S" ] && echo TTY=RESTORED || echo TTY=CHANGED'`, env);
    const last = (await terminal.watch(session, /EXIT=\d+/, 30_000)).at(-1)!;
    expect(last).to.match(/hyperkern: no guest .*no-such-guest/);
    expect(last).to.match(/CODE=1/);
    expect(last).to.match(/TTY=RESTORED/);
  });
});
