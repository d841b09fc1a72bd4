/**
 * GET /metrics on the real kernel (in-process, simulator backend): guest counters are
 * the JSON metrics' numbers, labels are guest id and device only (metadata
 * only through the allow-list), the agent's own series move with the
 * traffic, a slow backend is reported late instead of holding the scrape,
 * and `promtool check metrics` accepts the exposition.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

/** `name{labels} value` lines of one metric family. */
function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    out.push({ labels, value: Number(match[3]) });
  }
  return out;
}

describe('GET /metrics (simulator)', function () {
  this.timeout(60000);
  const agent = suiteAgent(() => ({ config: simulatorConfig({ metrics: { scrapeDeadlineSeconds: 1, guestLabels: ['owner', 'rack.row'] } }) }));

  async function scrape(): Promise<string> {
    const res = await agent.request('GET', '/metrics');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    return res.text;
  }

  it('exports each guest counter as the JSON metrics report it, with guest and device labels only', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await agent.request('POST', '/guests?wait=10', { memory: 256, cpu: 2, disks: [{ size: 64 }], nics: [{}], metadata: { owner: `team${i}`, 'rack.row': 'r1', secret: 'not exported' } });
      // Create boots the guest.
      expect(created.body.state).to.equal('running');
      ids.push(created.body.id);
    }
    const off = (await agent.request('POST', '/guests?wait=10&start=false', { memory: 128 })).body.id as string;
    const before = await Promise.all(ids.map(async (id) => (await agent.request('GET', `/guests/${id}/metrics/cpu`)).body));
    const text = await scrape();
    const after = await Promise.all(ids.map(async (id) => (await agent.request('GET', `/guests/${id}/metrics/cpu`)).body));
    const cpu = samples(text, 'hyperkern_guest_cpu_seconds_total');
    for (const [g, id] of ids.entries()) {
      for (const vcpu of [0, 1]) {
        const sample = cpu.find((s) => s.labels.guest === id && s.labels.vcpu === String(vcpu));
        expect(sample, `${id} vcpu ${vcpu}`).to.not.equal(undefined);
        expect(Object.keys(sample!.labels).sort()).to.deep.equal(['guest', 'vcpu']);
        expect(sample!.value).to.be.within(before[g][vcpu].cpu_time, after[g][vcpu].cpu_time);
      }
    }
    expect(cpu.some((s) => s.labels.guest === off), 'an off guest has no cpu series').to.equal(false);
    const nic = (await agent.request('GET', `/guests/${ids[0]}/metrics/nic`)).body as Record<string, { rx_bytes: number }>;
    const [nicName] = Object.keys(nic);
    const rx = samples(text, 'hyperkern_guest_nic_receive_bytes_total').find((s) => s.labels.guest === ids[0]);
    expect(rx?.labels).to.deep.equal({ guest: ids[0], device: nicName });
    const disk = (await agent.request('GET', `/guests/${ids[0]}/metrics/disk`)).body as Record<string, unknown>;
    expect(samples(text, 'hyperkern_guest_disk_read_bytes_total').filter((s) => s.labels.guest === ids[0]).map((s) => s.labels.device)).to.deep.equal(Object.keys(disk));

    expect(samples(text, 'hyperkern_guest_vcpus').find((s) => s.labels.guest === ids[0])?.value).to.equal(2);
    expect(samples(text, 'hyperkern_guest_memory_bytes').find((s) => s.labels.guest === ids[0])?.value).to.equal(256 * 1024 * 1024);
    expect(samples(text, 'hyperkern_guest_state').find((s) => s.labels.guest === off)?.labels.state).to.equal('off');
    const info = samples(text, 'hyperkern_guest_info').find((s) => s.labels.guest === ids[1]);
    expect(info?.labels, 'only allow-listed metadata, as label names').to.deep.equal({ guest: ids[1], owner: 'team1', rack_row: 'r1' });
    expect(text).to.not.include('not exported');

    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.status, `promtool: ${check.stdout}${check.stderr}`).to.equal(0);
  });

  it("counts the agent's requests, jobs and stages, and reports its queue, plugins and events", async () => {
    const id = (await agent.request('POST', '/guests?wait=10', { memory: 128 })).body.id as string;
    await agent.request('GET', `/guests/${id}`);
    await agent.request('GET', '/guests/no-such-guest');
    const text = await scrape();
    const requests = samples(text, 'hyperkern_http_requests_total');
    expect(requests.find((s) => s.labels.route === '/guests/:id' && s.labels.status === '200')?.value).to.be.greaterThan(0);
    expect(requests.find((s) => s.labels.route === '/guests/:id' && s.labels.status === '404')?.value).to.be.greaterThan(0);
    expect(requests.some((s) => s.labels.route.includes(id)), 'routes, never raw paths').to.equal(false);
    expect(samples(text, 'hyperkern_http_request_duration_seconds_count').find((s) => s.labels.route === '/guests/:id')?.value).to.be.greaterThan(1);
    expect(samples(text, 'hyperkern_jobs_total').find((s) => s.labels.action === 'create' && s.labels.outcome === 'complete')?.value).to.be.greaterThan(0);
    expect(samples(text, 'hyperkern_job_duration_seconds_count').find((s) => s.labels.action === 'create')?.value).to.be.greaterThan(0);
    expect(samples(text, 'hyperkern_stage_duration_seconds_count').find((s) => s.labels.stage === 'simulator.create')?.value).to.be.greaterThan(0);
    expect(samples(text, 'hyperkern_plugin_healthy').map((s) => [s.labels.plugin, s.value])).to.deep.include.members([['simulator', 1], ['guard', 1]]);
    expect(samples(text, 'hyperkern_jobs_queued')[0].value).to.equal(0);
    expect(samples(text, 'hyperkern_events_retained')[0].value).to.be.greaterThan(5);
    expect(samples(text, 'hyperkern_events_latest_id')[0].value).to.equal(samples(text, 'hyperkern_events_retained')[0].value);
  });

  it('reports a metrics stage that misses the scrape deadline as late, without waiting for it', async () => {
    const slow = (await agent.request('POST', '/guests?wait=10', { memory: 128, metadata: { 'simulator.delay.diskMetrics': '8000' } })).body.id as string;
    const t0 = performance.now();
    const text = await scrape();
    const ms = performance.now() - t0;
    expect(ms, 'the 1 s deadline bounds the scrape').to.be.lessThan(4000);
    expect(samples(text, 'hyperkern_metrics_sweep_late_guests').find((s) => s.labels.kind === 'disk')).to.deep.equal({ labels: { kind: 'disk', stage: 'simulator.diskMetrics' }, value: 1 });
    expect(samples(text, 'hyperkern_metrics_sweep_late_guests').find((s) => s.labels.kind === 'cpu')?.value).to.equal(0);
    expect(samples(text, 'hyperkern_guest_cpu_seconds_total').some((s) => s.labels.guest === slow), 'its other metrics are there').to.equal(true);
    expect(samples(text, 'hyperkern_guest_disk_read_bytes_total').some((s) => s.labels.guest === slow)).to.equal(false);
    await agent.request('POST', `/guests/${slow}/poweroff?wait=10`);
  });
});
