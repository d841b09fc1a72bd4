/**
 * hyperkern installs like a host package: `npm pack` gives a tarball (its
 * dependencies bundled, so an air-gapped host needs no registry) that
 * `npm install -g` installs; the installed `hyperkern serve` then runs from
 * any directory with config and state where env/flags say (temp dirs here:
 * the test never writes the real /etc or /var/lib), and the installed CLI
 * talks to it. deploy/hyperkern.service passes `systemd-analyze verify`.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { makeTempDir, removeDir, repoRoot } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';

const exec = promisify(execFile);

describe('install: npm pack, npm install -g, hyperkern serve', function () {
  // Packing and installing ~5,000 files takes minutes on a loaded 2-core machine.
  this.timeout(20 * 60 * 1000);
  let work: string;
  let prefix: string;

  before(async () => {
    work = await makeTempDir('hyperkern-install-');
    prefix = path.join(work, 'prefix');
    // dist/ is already built (the tests run from it): no prepack rebuild under the running suite.
    const { stdout } = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 });
    const tarball = path.join(work, JSON.parse(stdout)[0].filename);
    await exec('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball], { cwd: work, maxBuffer: 64 * 1024 * 1024 });
  });
  after(async () => {
    if (work) await removeDir(work);
  });

  it('installs the hyperkern command with its config examples and the unit', async () => {
    const pkg = path.join(prefix, 'lib/node_modules/hyperkern');
    expect(existsSync(path.join(prefix, 'bin/hyperkern')), 'bin/hyperkern').to.equal(true);
    for (const file of ['deploy/agent.json', 'deploy/hyperkern.service', 'config/simulator.json', 'dist/cli/hyperkern.js', 'dist/core/main.js']) {
      expect(existsSync(path.join(pkg, file)), file).to.equal(true);
    }
    expect(existsSync(path.join(pkg, 'dist/test')), 'tests are not shipped').to.equal(false);
    expect(JSON.parse(await readFile(path.join(pkg, 'deploy/agent.json'), 'utf8')).dataDir).to.equal('/var/lib/hyperkern');
  });

  it('hyperkern serve answers from any directory; the installed CLI drives it; SIGTERM stops it', async () => {
    const etc = path.join(work, 'etc-hyperkern');
    const state = path.join(work, 'var-lib-hyperkern');
    await exec('mkdir', ['-p', etc]);
    await writeFile(path.join(etc, 'agent.json'), JSON.stringify({ ...simulatorConfig(), dataDir: state }));
    const bin = path.join(prefix, 'bin/hyperkern');
    const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0'], { cwd: '/', env: { PATH: process.env.PATH, HYPERKERN_CONFIG: path.join(etc, 'agent.json') }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let logs = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" within 60 s:\n${logs}`)), 60000);
        const onData = (chunk: Buffer) => {
          logs += chunk.toString();
          const line = logs.split('\n').find((l) => l.includes('"msg":"listening"'));
          if (line) {
            clearTimeout(timer);
            resolve(JSON.parse(line).url);
          }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        exited.then((code) => reject(new Error(`hyperkern serve exited with ${code}:\n${logs}`)));
      });
      const health = await fetch(`${url}/health`);
      expect(health.status).to.equal(200);
      const env = { PATH: process.env.PATH, HYPERKERN_URL: url, XDG_CONFIG_HOME: '/nonexistent' };
      const { stdout } = await exec(bin, ['guests', 'create', '--memory', '64', '--disk', '8', '--wait'], { cwd: '/', env });
      expect(stdout).to.match(/✔ create [0-9a-f]{8} complete/);
      const listed = JSON.parse((await exec(bin, ['--json', 'guests', 'ls'], { cwd: '/', env })).stdout);
      expect(listed).to.have.length(1);
      expect(await readdir(state)).to.include('hyperkern.sqlite');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, 'exit code after SIGTERM').to.equal(0);
  });

  it('hyperkern serve defaults to /etc/hyperkern/agent.json', async function () {
    if (existsSync('/etc/hyperkern/agent.json')) {
      // This host has a real install: starting it from a test would serve the host's guests.
      this.skip();
    }
    const failed = await exec(path.join(prefix, 'bin/hyperkern'), ['serve', '--check'], { cwd: '/', env: { PATH: process.env.PATH } }).catch((e) => e);
    expect(failed.code).to.equal(1);
    expect(failed.stderr).to.match(/cannot read config file \/etc\/hyperkern\/agent\.json: ENOENT/);
  });
});

describe('install: deploy/hyperkern.service', function () {
  this.timeout(60000);
  it('passes systemd-analyze verify', async () => {
    const { stdout, stderr } = await exec('systemd-analyze', ['verify', path.join(repoRoot, 'deploy/hyperkern.service')]);
    expect(`${stdout}${stderr}`.trim(), 'no warnings').to.equal('');
  });

  it('lets QEMU run, restarts on failure and leaves guests running on stop', async () => {
    const unit = await readFile(path.join(repoRoot, 'deploy/hyperkern.service'), 'utf8');
    const settings = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
    expect(settings('KillMode')).to.deep.equal(['process']);
    expect(settings('Restart')).to.deep.equal(['on-failure']);
    expect(settings('DeviceAllow')).to.include.members(['/dev/kvm rw', '/dev/net/tun rw']);
    expect(settings('CapabilityBoundingSet')[0].split(' ')).to.include('CAP_NET_ADMIN');
    expect(settings('StateDirectory')).to.deep.equal(['hyperkern']);
    expect(settings('ProtectSystem')).to.deep.equal(['strict']);
  });
});
