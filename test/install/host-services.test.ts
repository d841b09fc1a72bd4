/**
 * Installing the test prerequisites (scripts/install-host-deps.sh, what
 * `npm test` runs first) leaves no daemon of theirs enabled at boot or
 * running: the packages' postinst scripts enable etcd, Prometheus,
 * docker-registry and LXC's units, and a hypervisor host must not run an
 * etcd after its next reboot because its tests ran once. The host is put
 * back in the state a postinst leaves (`systemctl enable`, which also
 * works without systemd as PID 1), then the script must clean it; daemons
 * the tests themselves start (children of a node process) are not counted.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { repoRoot } from '../support/agent.js';

const run = promisify(execFile);
const UNITS = ['etcd.service', 'etcd2.service', 'prometheus.service', 'docker-registry.service', 'lxc.service', 'lxc-net.service', 'lxc-monitord.service'];
/** Process names of those daemons (comm, at most 15 characters). */
const DAEMONS = ['etcd', 'prometheus', 'docker-registry', 'registry', 'lxc-monitord'];
const SYSTEM_DIR = '/etc/systemd/system';

/** Every symlink under /etc/systemd/system (the .wants dirs and aliases) pointing at one of UNITS. */
async function enablementLinks(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(file);
      else if (entry.isSymbolicLink() && UNITS.includes(path.basename(await readlink(file)))) found.push(file);
    }
  };
  if (existsSync(SYSTEM_DIR)) await walk(SYSTEM_DIR);
  return found;
}

/** SysV start links (/etc/rcN.d/S..name) of those daemons. */
async function sysvStartLinks(): Promise<string[]> {
  const found: string[] = [];
  for (const level of ['2', '3', '4', '5']) {
    const dir = `/etc/rc${level}.d`;
    if (!existsSync(dir)) continue;
    for (const name of await readdir(dir)) {
      if (/^S\d\d/.test(name) && ['etcd', 'prometheus', 'docker-registry', 'lxc', 'lxc-net'].includes(name.slice(3))) found.push(path.join(dir, name));
    }
  }
  return found;
}

/** Running daemons of DAEMONS that no node process (a test) started. */
async function systemDaemons(): Promise<string[]> {
  const procs = new Map<number, { ppid: number; comm: string }>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …: comm may hold spaces and parentheses.
    const match = /^\d+ \((.*)\) \S+ (\d+)/s.exec(stat);
    if (match) procs.set(Number(name), { comm: match[1], ppid: Number(match[2]) });
  }
  const startedByATest = (pid: number): boolean => {
    for (let p = procs.get(pid)?.ppid, hops = 0; p && p > 1 && hops < 64; p = procs.get(p)?.ppid, hops++) {
      if (procs.get(p)?.comm === 'node' || procs.get(p)?.comm === 'MainThread') return true;
    }
    return false;
  };
  return [...procs].filter(([pid, { comm }]) => DAEMONS.includes(comm) && !startedByATest(pid)).map(([pid, { comm }]) => `${comm} (pid ${pid})`);
}

describe('install-host-deps.sh leaves no service enabled or running', function () {
  // Installs what is missing first: minutes on a fresh machine, a second here.
  this.timeout(30 * 60 * 1000);

  before(async function () {
    if (process.getuid?.() !== 0 || !existsSync('/usr/bin/dpkg-query')) {
      console.log('      (skipped: needs root on a Debian host, as the script does)');
      this.skip();
    }
  });

  it('cleans a host where the packages\' postinst enabled their units, and leaves policy-rc.d as it was', async () => {
    const policyBefore = await readFile('/usr/sbin/policy-rc.d', 'utf8').catch(() => undefined);
    // What a postinst does (deb-systemd-helper enable), for each unit that is installed.
    const installed = UNITS.filter((unit) => existsSync(`/lib/systemd/system/${unit}`));
    for (const unit of installed) await run('systemctl', ['enable', '--quiet', unit]).catch(() => undefined);
    expect(await enablementLinks(), 'the postinst state this test starts from').to.not.deep.equal([]);

    await run('bash', [path.join(repoRoot, 'scripts/install-host-deps.sh')], { maxBuffer: 16 * 1024 * 1024 });

    expect(await enablementLinks(), 'no unit enabled at boot').to.deep.equal([]);
    expect(await sysvStartLinks(), 'no SysV start link').to.deep.equal([]);
    for (const unit of installed) {
      const state = await run('systemctl', ['is-enabled', unit]).then(({ stdout }) => stdout.trim(), (error: { stdout: string }) => error.stdout.trim());
      expect(state, unit).to.be.oneOf(['disabled', 'masked', 'static']);
    }
    expect(await systemDaemons(), 'no daemon of theirs running').to.deep.equal([]);
    expect(await readFile('/usr/sbin/policy-rc.d', 'utf8').catch(() => undefined), 'policy-rc.d as it was').to.equal(policyBefore);
  });

  it('runs again with nothing to do and nothing enabled', async () => {
    await run('bash', [path.join(repoRoot, 'scripts/install-host-deps.sh')]);
    expect(await enablementLinks()).to.deep.equal([]);
  });
});
