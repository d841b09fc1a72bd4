/**
 * Boot-time checks, through the real command line: config validation
 * errors name the file, the key and the fix; broken plugins and unknown
 * stages stop the agent with a clear message; --check validates and exits.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { distRoot, removeDir, startAgent } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { shippedConfig, simulatorConfig } from '../support/configs.js';

const run = promisify(execFile);
const fixture = (name: string) => path.join(distRoot, 'test/fixtures/plugins', `${name}.js`);

describe('config and plugin loading', function () {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hyperkern-config-'));
  });
  after(async () => removeDir(dir));
  // Plugins at work in jobs need no command line: those agents run in-process.
  const agents = agentsPerTest();

  let counter = 0;
  /** Runs `main.js --check` on a config; returns exit code and output. */
  async function check(config: unknown, extraArgs: string[] = []): Promise<{ code: number; stdout: string; stderr: string; file: string }> {
    const file = path.join(dir, `config-${++counter}.json`);
    await writeFile(file, typeof config === 'string' ? config : JSON.stringify(config));
    try {
      const { stdout, stderr } = await run(process.execPath, [path.join(distRoot, 'core/main.js'), '--config', file, '--check', ...extraArgs]);
      return { code: 0, stdout, stderr, file };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr, file };
    }
  }

  it('--check accepts every shipped config', async () => {
    for (const name of ['simulator.json', 'agent.json']) {
      const result = await check(shippedConfig(name));
      expect(result.code, `${name}: ${result.stderr}`).to.equal(0);
      expect(result.stdout).to.match(/is valid: plugins guard, /);
    }
  });

  it('names the file when it is missing or not JSON', async () => {
    const missing = await run(process.execPath, [path.join(distRoot, 'core/main.js'), '--config', '/nonexistent/agent.json', '--check']).catch((e) => e);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/cannot read config file \/nonexistent\/agent\.json: ENOENT/);
    const bad = await check('{"listen": ');
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.include(bad.file).and.match(/is not valid JSON/);
  });

  it('names the key and the fix for invalid values and unknown keys', async () => {
    const result = await check({ ...simulatorConfig(), jobs: { concurrency: -2 }, colour: 'blue' });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include(result.file);
    expect(result.stderr).to.match(/jobs\.concurrency: /);
    expect(result.stderr).to.match(/unknown key\(s\) "colour"; remove them or check their spelling/);
  });

  it('names invalid plugin options by their path', async () => {
    const config = simulatorConfig({ simulator: { delays: { start: 'slow' } } });
    const result = await check(config);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/plugins\[1\]\.options\.delays\.start: /);
  });

  it('refuses an action that names a stage no plugin provides, listing those that exist', async () => {
    const config = simulatorConfig();
    config.actions.start = { async: ['simulator.teleport'] };
    const result = await check(config);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/actions\.start\.async\[0\] names stage "simulator\.teleport", which no configured plugin provides/);
    expect(result.stderr).to.match(/action stages that exist: .*simulator\.start.*simulator\.poweroff/);
  });

  it('refuses a metrics stage used as a lifecycle stage', async () => {
    const config = simulatorConfig();
    config.actions.start = { async: ['simulator.cpuMetrics'] };
    const result = await check(config);
    expect(result.stderr).to.match(/names "simulator\.cpuMetrics", a metrics stage, where a action stage is needed/);
  });

  it('refuses a vnc action of several stages or of a stage of another kind', async () => {
    const config = simulatorConfig();
    config.actions.vnc = { stages: ['simulator.cpuMetrics'] };
    expect((await check(config)).stderr).to.match(/actions\.vnc\.stages\[0\] names "simulator\.cpuMetrics", a metrics stage, where a vnc stage is needed/);
    config.actions.vnc = { stages: ['simulator.cpuMetrics', 'simulator.nicMetrics'] };
    expect((await check(config)).stderr).to.match(/actions\.vnc takes exactly one stage, as "stages": \["plugin\.vnc"\]; got 2/);
  });

  it('refuses an unknown action, listing the valid ones', async () => {
    const config = simulatorConfig();
    config.actions.hibernate = { async: ['simulator.suspend'] };
    const result = await check(config);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/actions\.hibernate: unknown action "hibernate"\. Valid actions: create, delete, start/);
  });

  it('accepts mistify\'s "run" as the name of start', async () => {
    const config = simulatorConfig();
    config.actions.run = { sync: ['guard.requireState'], async: ['simulator.start'] };
    const result = await check(config);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/actions .*\bstart\b/);
  });

  it('loads a well-formed fixture plugin with options and a dependency', async () => {
    const config = simulatorConfig();
    config.plugins.push({ module: fixture('good'), options: { greeting: 'hi' } });
    config.actions.create = { async: ['simulator.create', 'simulator.start', 'good.tag'] };
    const result = await check(config);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/plugins guard, simulator, images, good/);
  });

  it('runs a fixture plugin stage in a real job, with its options injected', async () => {
    const config = simulatorConfig();
    config.plugins.push({ module: fixture('good'), options: { greeting: 'hi' } });
    config.actions.create = { async: ['simulator.create', 'simulator.start', 'good.tag'] };
    const agent = await agents.inProcess({ config });
    const res = await agent.request('POST', '/guests?wait=5', {});
    expect(res.status).to.equal(200);
    expect(res.body.metadata.greeting, 'the plugin stage saw its own options').to.equal('hi');
  });

  it('refuses a plugin whose dependency is not configured', async () => {
    const config = simulatorConfig();
    config.plugins = config.plugins.filter((p: { module: string }) => p.module !== 'guard');
    config.plugins.push({ module: fixture('good') });
    config.actions = {};
    const result = await check(config);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/plugin "good" needs plugin\(s\) "guard", which the config does not list/);
  });

  it('refuses plugins that depend on each other in a cycle', async () => {
    const config = simulatorConfig();
    config.plugins.push({ module: fixture('cycle-a') }, { module: fixture('cycle-b') });
    const result = await check(config);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/plugins depend on each other in a cycle \("cycle-a" -> "cycle-b" -> "cycle-a"\)/);
  });

  it('builds a plugin after its dependency and gives it the dependency\'s stages, typed by kind', async () => {
    const config = simulatorConfig();
    // Listed first on purpose: start order follows dependsOn, not the list.
    config.plugins.unshift({ module: fixture('uses-guard') });
    config.actions.start = { sync: ['uses-guard.offOnly'], async: ['simulator.start'] };
    const checked = await check(config);
    expect(checked.code, checked.stderr).to.equal(0);
    expect(checked.stdout).to.match(/plugins guard, uses-guard, simulator/);
    const agent = await agents.inProcess({ config });
    const created = await agent.request('POST', '/guests?wait=5&start=false', {});
    expect(created.status).to.equal(200);
    const id = created.body.id;
    expect((await agent.request('POST', `/guests/${id}/start?wait=5`)).status).to.equal(200);
    // Running now: guard.requireState, reached through uses-guard, refuses.
    const again = await agent.request('POST', `/guests/${id}/start`);
    expect(again.status).to.equal(409);
    expect(again.body.message).to.match(/guest is running; start needs off/);
  });

  it('refuses broken plugins with a message naming the config entry', async () => {
    const cases: Array<[string, RegExp]> = [
      // The entry after config/simulator.json's three plugins.
      ['no-manifest', /plugins\[3\] .*the manifest lacks id, version, pluginApi, stages, create/],
      ['old-api', /was written for plugin API 0; this kernel provides plugin API 1/],
      ['missing-handler', /plugin "half" declares stage\(s\) absent but its instance has no handler/],
      ['throws-on-import', /cannot load module .*throws-on-import\.js: this plugin module is broken on purpose/],
      ['does-not-exist', /cannot load module .*does-not-exist\.js/],
    ];
    for (const [name, message] of cases) {
      const config = simulatorConfig();
      config.plugins.push({ module: fixture(name) });
      const result = await check(config);
      expect(result.code, name).to.equal(1);
      expect(result.stderr, name).to.match(message);
      expect(result.stderr, `${name}: no stack trace`).to.not.match(/\n\s+at /);
    }
  });

  it('names the built-in plugins when a bare plugin name is unknown', async () => {
    const config = simulatorConfig();
    config.plugins.push({ module: 'hypervisor-x' });
    const result = await check(config);
    expect(result.stderr).to.match(/built-in plugins: .*simulator/);
  });

  it('refuses two plugins with the same id', async () => {
    const config = simulatorConfig();
    config.plugins.push({ module: 'simulator' });
    const result = await check(config);
    expect(result.stderr).to.match(/two plugins use the id "simulator"/);
  });

  it('says which flag to fix for a bad listen address, and when the port is taken', async () => {
    const bad = await startAgent({ config: simulatorConfig(), args: ['--listen', 'localhost'] }).catch((e: Error) => e);
    expect(String(bad)).to.match(/listen address "localhost" is not HOST:PORT/);
    const first = await startAgent({ config: simulatorConfig() });
    try {
      const port = new URL(first.url).port;
      const taken = await startAgent({ config: simulatorConfig(), args: ['--listen', `127.0.0.1:${port}`] }).catch((e: Error) => e);
      expect(String(taken)).to.match(/cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE \(another process uses that port/);
    } finally {
      await first.stop();
      await removeDir(first.dataDir);
    }
  });

  it('takes listen and data dir from the environment when no flag is given', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'hyperkern-envdir-'));
    const file = path.join(dir, 'env-config.json');
    await writeFile(file, JSON.stringify(simulatorConfig()));
    const child = execFile(process.execPath, [path.join(distRoot, 'core/main.js')], {
      env: { ...process.env, HYPERKERN_CONFIG: file, HYPERKERN_LISTEN: '127.0.0.1:0', HYPERKERN_DATA_DIR: dataDir },
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no listening line')), 10000);
        child.stdout!.on('data', (chunk: Buffer) => {
          const match = /"url":"(http:[^"]+)"/.exec(chunk.toString());
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${url}/health`);
      expect(health.status).to.equal(200);
      const { readdir } = await import('node:fs/promises');
      expect(await readdir(dataDir)).to.include('hyperkern.sqlite');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await removeDir(dataDir);
    }
  });
});
