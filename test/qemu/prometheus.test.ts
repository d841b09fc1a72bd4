/**
 * GET /metrics scraped by a real Prometheus (Debian's package, started here
 * on loopback with its own config and temp storage, stopped by PID) while
 * the agent runs 3 real QEMU guests (TCG, no OS needed: vCPUs still run
 * firmware); Prometheus's query API returns each guest's cpu counter, and
 * the exposition passes `promtool check metrics`.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { freePort } from '../support/free-port.js';
import { disposeQemuTestAgent } from './kill-test-qemus.js';

const TOKEN = 'metrics-test-token-0123456789';


describe('GET /metrics scraped by a real Prometheus (3 QEMU guests)', function () {
  this.timeout(300000);
  let agent: RunningAgent | undefined;
  let root: string;
  let prometheus: ReturnType<typeof spawn> | undefined;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hkm-'));
  });
  after(async () => {
    if (prometheus?.pid && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await new Promise((r) => prometheus!.once('exit', r));
    }
    await disposeQemuTestAgent(agent);
    await removeDir(root);
  });

  it('returns every guest cpu counter through the query API; promtool accepts the exposition', async () => {
    const config = shippedConfig('qemu.json');
    const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
    entry.options = { ...entry.options, accel: 'tcg', imagesDir: path.join(root, 'images') };
    agent = await startAgent({ config: { ...config, logLevel: 'info', auth: { tokens: [TOKEN] } }, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await agent.request('POST', '/guests?wait=120', { memory: 64, cpu: i + 1, disks: [{ size: 16 }] }, auth);
      expect(created.status, created.text).to.equal(200);
      expect(created.body.state, 'create boots the guest').to.equal('running');
      ids.push(created.body.id);
    }

    const scrape = await fetch(`${agent.url}/metrics`, { headers: auth });
    expect(scrape.status).to.equal(200);
    expect(scrape.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const text = await scrape.text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.status, `promtool: ${check.stdout}${check.stderr}`).to.equal(0);
    for (const [i, id] of ids.entries()) {
      expect(text).to.include(`hyperkern_guest_vcpus{guest="${id}"} ${i + 1}`);
      expect(text).to.include(`hyperkern_guest_state{guest="${id}",state="running"} 1`);
    }
    expect((await fetch(`${agent.url}/metrics`)).status, 'auth like every route').to.equal(401);

    const port = await freePort();
    const storage = path.join(root, 'tsdb');
    const configFile = path.join(root, 'prometheus.yml');
    const target = new URL(agent.url).host;
    await writeFile(
      configFile,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: hyperkern',
        '    authorization:',
        `      credentials: ${TOKEN}`,
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    prometheus = spawn('prometheus', [`--config.file=${configFile}`, `--storage.tsdb.path=${storage}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    const query = async (q: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      if (!res?.ok) return undefined;
      return ((await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result;
    };
    const series = await waitFor(
      async () => {
        const result = await query('hyperkern_guest_cpu_seconds_total');
        const guests = new Set(result?.map((r) => r.metric.guest));
        return ids.every((id) => guests.has(id)) ? result : undefined;
      },
      120000,
      'Prometheus to have scraped every guest cpu counter',
    );
    for (const [i, id] of ids.entries()) {
      const vcpus = series.filter((s) => s.metric.guest === id);
      expect(vcpus.map((s) => s.metric.vcpu).sort(), `guest ${i} has one series per vCPU`).to.deep.equal(Array.from({ length: i + 1 }, (_, n) => String(n)));
      for (const s of vcpus) expect(Number(s.value[1]), 'a running vCPU used cpu time').to.be.greaterThan(0);
      expect(Object.keys(vcpus[0].metric).sort(), 'guest id and device labels only').to.deep.equal(['__name__', 'guest', 'instance', 'job', 'vcpu']);
    }
    const up = await query('up{job="hyperkern"}');
    expect(up?.[0]?.value[1]).to.equal('1');
    const late = await query('hyperkern_metrics_sweep_late_guests');
    expect(late?.length, 'each metrics stage reports its sweep').to.be.greaterThan(0);
  });
});
