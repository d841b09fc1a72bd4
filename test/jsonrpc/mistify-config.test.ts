/**
 * mistify-agent config files load unchanged: the shipped example, every
 * action name the Go agent ever accepted, its `dbpath`, and its validation
 * errors (made clearer), through the real CLI.
 */
import { underLoad } from '../support/load-budget.js';
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { distRoot, makeTempDir, removeDir, repoRoot } from '../support/agent.js';

/** mistify-agent's config.ValidActions over its history (older and later container names). */
const GO_AGENT_ACTIONS = [
  'create', 'delete', 'reboot', 'restart', 'poweroff', 'shutdown', 'run', 'cpuMetrics', 'nicMetrics', 'diskMetrics',
  'listImages', 'getImage', 'deleteImage', 'fetchImage', 'listSnapshots', 'getSnapshot', 'createSnapshot', 'deleteSnapshot',
  'rollbackSnapshot', 'downloadSnapshot', 'listContainerImage', 'getContainerImage', 'deleteContainerImage', 'pullContainerImage',
  'listContainers', 'getContainer', 'createContainer', 'startContainer', 'stopContainer', 'deleteContainer',
  'containerCreate', 'containerDelete', 'containerStart', 'containerReboot', 'containerRestart', 'containerPoweroff',
  'containerShutdown', 'containerListImages', 'containerGetImage', 'containerDeleteImage', 'containerFetchImage',
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (bounded by a kill after 20 s). */
function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(distRoot, 'core/main.js'), ...args], { cwd: repoRoot, env: { ...process.env, HYPERKERN_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('jsonrpc: mistify-agent config files', function () {
  this.timeout(60_000);
  let dir: string;

  before(async () => {
    dir = await makeTempDir();
  });
  after(async () => {
    await removeDir(dir);
  });

  async function configFile(name: string, config: object): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, JSON.stringify(config));
    return file;
  }

  it('checks config/mistify-example.json as is: one jsonrpc plugin per service, container, image and snapshot actions planned', async () => {
    const run = await cli(['--config', 'config/mistify-example.json', '--check']);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include('plugins libvirt, storage, storageDownload, mdocker');
    expect(run.stdout).to.match(/actions create, start, shutdown, reboot, restart, poweroff, delete, cpuMetrics, nicMetrics, diskMetrics/);
    expect(run.stdout).to.include('; guest-type actions containerCreate, containerPoweroff');
    expect(run.stdout, 'image actions are planned as image stages').to.match(/actions create, .*listImages, getImage, fetchImage, deleteImage/);
    expect(run.stdout, 'snapshot actions are planned as snapshot stages').to.match(/actions create, .*listSnapshots, createSnapshot, downloadSnapshot/);
    expect(run.stdout, 'every action of the example is routed').to.not.include('has no route for yet');
  });

  it('loads every action name the Go agent accepted', async () => {
    const actions = Object.fromEntries(GO_AGENT_ACTIONS.map((name, i) => [name, { stages: [{ service: 'svc', method: name.endsWith('Metrics') ? `Svc.M${i}` : `Svc.A${i}` }] }]));
    const file = await configFile('all-actions.json', { services: { svc: { port: 9 } }, actions });
    const run = await cli(['--config', file, '--check']);
    expect(run.code, run.stderr).to.equal(0);
    const valid = /config \S+ is valid: plugins svc; actions ([^;\n]*)/.exec(run.stdout);
    expect(valid, run.stdout).to.not.equal(null);
    const containerActions = ['containerCreate', 'containerDelete', 'containerStart', 'containerReboot', 'containerRestart', 'containerPoweroff', 'containerShutdown'];
    expect(run.stdout, 'container actions make the plans of container guests').to.include(`; guest-type actions ${containerActions.join(', ')}`);
    const routed = [
      'containerDeleteImage', 'containerFetchImage', 'containerGetImage', 'containerListImages', 'cpuMetrics', 'create', 'delete', 'deleteImage',
      'diskMetrics', 'fetchImage', 'getImage', 'listImages', 'nicMetrics', 'poweroff', 'reboot', 'restart', 'shutdown', 'start',
      'listSnapshots', 'getSnapshot', 'createSnapshot', 'deleteSnapshot', 'rollbackSnapshot', 'downloadSnapshot',
    ].sort();
    expect(valid![1].split(', ').sort()).to.deep.equal(routed);
    // The others load with a warning each, rather than failing the boot.
    expect(run.stdout.match(/has no route for yet/g)).to.have.length(GO_AGENT_ACTIONS.length - routed.length - containerActions.length);
  });

  it('refuses an unknown action, listing the valid ones', async () => {
    const file = await configFile('unknown-action.json', { services: { svc: { port: 9 } }, actions: { launch: { stages: [{ service: 'svc', method: 'Svc.Launch' }] } } });
    const run = await cli(['--config', file, '--check']);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include('actions.launch: unknown action "launch". Valid actions: create, delete, start');
    expect(run.stderr).to.include('run');
    expect(run.stderr).to.include('containerCreate');
  });

  it('refuses what the Go agent refused, saying where: an undefined service, a service without a port, an empty method', async () => {
    const undefinedService = await cli(['--config', await configFile('no-service.json', { services: {}, actions: { run: { stages: [{ service: 'libvirt', method: 'Libvirt.Run' }] } } }), '--check']);
    expect(undefinedService.code).to.equal(1);
    expect(undefinedService.stderr).to.include('actions.run.stages[0] names service "libvirt", which "services" does not define');
    const noPort = await cli(['--config', await configFile('no-port.json', { services: { libvirt: { path: '/rpc' } }, actions: {} }), '--check']);
    expect(noPort.code).to.equal(1);
    expect(noPort.stderr).to.include('service libvirt has no port');
    const noMethod = await cli(['--config', await configFile('no-method.json', { services: { libvirt: { port: 1 } }, actions: { run: { stages: [{ service: 'libvirt' }] } } }), '--check']);
    expect(noMethod.code).to.equal(1);
    expect(noMethod.stderr).to.include('actions.run.stages[0]: method cannot be empty');
  });

  it('keeps its state in DBPATH.d, beside where the Go agent kept its database', async () => {
    const dbpath = path.join(dir, 'mistify', 'agent.db');
    const file = await configFile('dbpath.json', { services: { svc: { port: 9 } }, actions: {}, dbpath });
    const child = spawn(process.execPath, [path.join(distRoot, 'core/main.js'), '--config', file, '--listen', '127.0.0.1:0'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let out = '';
        const bound = underLoad(15_000);
        const timer = setTimeout(() => reject(new Error(`no "kernel ready" within ${bound} ms: ${out}`)), bound);
        child.stdout.on('data', (d) => {
          out += d;
          const line = out.split('\n').find((l) => l.includes('"kernel ready"'));
          if (line) {
            clearTimeout(timer);
            resolve(JSON.parse(line));
          }
        });
        child.once('exit', (code) => reject(new Error(`agent exited with ${code}: ${out}`)));
      });
      expect(ready.dataDir).to.equal(`${dbpath}.d`);
      expect(existsSync(`${dbpath}.d`)).to.equal(true);
      expect(existsSync(dbpath), 'the Go database path itself is left alone').to.equal(false);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });
});
