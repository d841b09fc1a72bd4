/**
 * The kernel enforces the lifecycle table itself (core/contract/lifecycle.ts,
 * core/jobs/guest-plans.ts): in the request (409, nothing queued) and again
 * when the job starts, with no guard plugin in the config at all; a
 * config's guard.requireState with args.states replaces the table's states
 * for that action, to narrow or widen them. A delete shows `deleting` while
 * its job runs, and a failed or cancelled one leaves the guest as it was.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, waitFor } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { describeAllowedStates, type LifecycleAction } from '../../core/contract/lifecycle.js';

/** The simulator alone: no guard plugin, no actions (the kernel's default plans). */
function simulatorOnly(): Record<string, unknown> {
  const { actions: _actions, ...config } = simulatorConfig();
  return { ...config, plugins: config.plugins.filter((p: { module: string }) => p.module === 'simulator') };
}

describe('lifecycle enforced by the kernel', function () {
  this.timeout(60_000);
  const agents = agentsPerTest();

  it('refuses an action from a state the table does not allow with no guard plugin configured, in the request and when the job starts', async () => {
    const agent = await agents.inProcess({ config: simulatorOnly() });
    const created = await agent.request('POST', '/guests?wait=10', { memory: 128 });
    expect(created.status, created.text).to.equal(200);
    const id = created.body.id;
    expect(created.body.state).to.equal('running');

    const refused = await agent.request('POST', `/guests/${id}/start`);
    expect(refused.status, refused.text).to.equal(409);
    expect(refused.body.message).to.equal(`guest is running; start needs ${describeAllowedStates('start')}`);
    expect(refused.body.message, 'the table allows crashed and error too').to.match(/off, shutdown, suspended, crashed or error$/);
    expect(refused.headers.get('x-guest-job-id'), 'nothing queued').to.equal(null);
    expect((await agent.request('POST', `/guests/${id}/suspend?wait=10`)).body.state).to.equal('suspended');
    const suspended = await agent.request('POST', `/guests/${id}/shutdown`);
    expect(suspended.status).to.equal(409);
    expect(suspended.body.message).to.equal('guest is suspended; shutdown needs running');
    expect((await agent.request('POST', `/guests/${id}/start?wait=10`)).body.state, 'start resumes a suspended guest').to.equal('running');

    // Two shutdowns pass the request's check (the guest is running for both); the second finds it shut down when it starts.
    const first = await agent.request('POST', `/guests/${id}/shutdown`);
    const second = await agent.request('POST', `/guests/${id}/shutdown`);
    expect([first.status, second.status]).to.deep.equal([202, 202]);
    const secondId = second.headers.get('x-guest-job-id')!;
    const ended = await waitFor(async () => {
      const job = (await agent.request('GET', `/jobs/${secondId}`)).body;
      return job.Status === 'Complete' || job.Status === 'Error' ? job : undefined;
    }, 20_000, 'the second shutdown to end');
    expect(ended.Status).to.equal('Error');
    expect(ended.Message).to.match(/^guest is shutdown; shutdown needs running \(checked again when the job started/);
    expect((await agent.request('GET', `/jobs/${first.headers.get('x-guest-job-id')}`)).body.Status).to.equal('Complete');
    expect((await agent.request('GET', `/guests/${id}`)).body.state).to.equal('shutdown');
  });

  it("uses a config's guard.requireState args.states in place of the table's, narrowing or widening one action", async () => {
    const base = simulatorConfig();
    const config = {
      ...base,
      actions: {
        create: { async: ['simulator.create', 'simulator.start'] },
        // Narrowed: off only (the table also allows shutdown, suspended, crashed and error).
        start: { sync: [{ stage: 'guard.requireState', args: { states: ['off'] } }], async: ['simulator.start'] },
        // Widened: off too (the simulator powers an off guest off again; the table refuses it).
        poweroff: { sync: [{ stage: 'guard.requireState', args: { states: ['running', 'suspended', 'shutdown', 'crashed', 'off'] } }], async: ['simulator.poweroff'] },
        // As the table says: guard without states changes nothing.
        suspend: { sync: ['guard.requireState'], async: ['simulator.suspend'] },
        delete: { async: ['simulator.delete'] },
      },
    };
    const agent = await agents.inProcess({ config });
    const id = (await agent.request('POST', '/guests?wait=10&start=false', { memory: 128 })).body.id;
    expect((await agent.request('GET', `/guests/${id}`)).body.state).to.equal('off');

    const widened = await agent.request('POST', `/guests/${id}/poweroff?wait=10`);
    expect(widened.status, widened.text).to.equal(200);
    expect(widened.body.state).to.equal('off');

    const tableSays = await agent.request('POST', `/guests/${id}/suspend`);
    expect(tableSays.status).to.equal(409);
    expect(tableSays.body.message).to.equal(`guest is off; suspend needs ${describeAllowedStates('suspend')}`);

    expect((await agent.request('POST', `/guests/${id}/start?wait=10`)).body.state).to.equal('running');
    expect((await agent.request('POST', `/guests/${id}/suspend?wait=10`)).body.state).to.equal('suspended');
    const narrowed = await agent.request('POST', `/guests/${id}/start`);
    expect(narrowed.status, narrowed.text).to.equal(409);
    expect(narrowed.body.message, 'the table would allow it').to.equal('guest is suspended; start needs off');
  });

  it("README's API table says the states the table enforces, action by action", () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const routes: Array<[LifecycleAction, string]> = [
      ['start', 'POST /guests/{id}/start'],
      ['shutdown', 'POST /guests/{id}/shutdown'],
      ['reboot', 'POST /guests/{id}/reboot'],
      ['restart', 'POST /guests/{id}/restart'],
      ['poweroff', 'POST /guests/{id}/poweroff'],
      ['suspend', 'POST /guests/{id}/suspend'],
      ['resume', 'POST /guests/{id}/resume'],
      ['delete', 'DELETE /guests/{id}'],
    ];
    for (const [action, route] of routes) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${route}\` |`));
      expect(row, `README has a row for ${route}`).to.be.a('string');
      expect(row, `README's ${route} row`).to.include(`409 unless ${describeAllowedStates(action)}`);
    }
  });

  it('shows deleting while a slow delete runs, refuses other actions meanwhile, and removes the guest at the end', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig() });
    const id = (await agent.request('POST', '/guests?wait=10', { memory: 128, metadata: { 'simulator.delay.delete': '3000' } })).body.id;
    const accepted = await agent.request('DELETE', `/guests/${id}`);
    expect(accepted.status, accepted.text).to.equal(202);
    const jobId = accepted.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await agent.request('GET', `/guests/${id}`)).body.state === 'deleting', 10_000, 'the guest to show deleting');
    expect((await agent.request('GET', `/jobs/${jobId}`)).body).to.include({ Status: 'Running', Stage: 'simulator.delete' });
    expect((await agent.request('GET', '/guests')).body.find((g: { id: string }) => g.id === id)?.state, 'the list says so too').to.equal('deleting');
    const again = await agent.request('DELETE', `/guests/${id}`);
    expect(again.status).to.equal(409);
    expect(again.body.message).to.equal(`guest is deleting; delete needs ${describeAllowedStates('delete')}`);
    expect((await agent.request('POST', `/guests/${id}/shutdown`)).body.message).to.equal('guest is deleting; shutdown needs running');
    await waitFor(async () => (await agent.request('GET', `/guests/${id}`)).status === 404, 10_000, 'the guest to leave');
    expect((await agent.request('GET', `/jobs/${jobId}`)).body.Status).to.equal('Complete');
  });

  it('puts a guest whose delete failed or was cancelled back in the state it had', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig() });
    const failing = (await agent.request('POST', '/guests?wait=10', { memory: 128, metadata: { 'simulator.fail': 'delete', 'simulator.delay.delete': '500' } })).body.id;
    const failed = await agent.request('DELETE', `/guests/${failing}?wait=10`);
    expect(failed.status, failed.text).to.equal(500);
    expect(failed.body.job.Message).to.match(/simulator\.delete/);
    expect((await agent.request('GET', `/guests/${failing}`)).body.state, 'back to running').to.equal('running');
    expect((await agent.request('PATCH', `/guests/${failing}/metadata`, { 'simulator.fail': '' })).status).to.equal(200);
    expect((await agent.request('DELETE', `/guests/${failing}?wait=10`)).status, 'deleted on the next try').to.equal(200);

    const slow = (await agent.request('POST', '/guests?wait=10&start=false', { memory: 128, metadata: { 'simulator.delay.delete': '30000' } })).body.id;
    const jobId = (await agent.request('DELETE', `/guests/${slow}`)).headers.get('x-guest-job-id')!;
    await waitFor(async () => (await agent.request('GET', `/guests/${slow}`)).body.state === 'deleting', 10_000, 'the guest to show deleting');
    const cancelled = await agent.request('DELETE', `/jobs/${jobId}?wait=10`);
    expect(cancelled.body).to.include({ Status: 'Error', Message: 'cancelled' });
    expect((await agent.request('GET', `/guests/${slow}`)).body.state, 'back to off').to.equal('off');
  });

  it('leaves a guest whose delete was cut off by a restart in error, with the reason; delete works from there', async () => {
    const config = simulatorConfig({ jobs: { shutdownGraceSeconds: 1 } });
    const first = await agents.spawn({ config });
    const id = (await first.request('POST', '/guests?wait=10', { memory: 128, metadata: { 'simulator.delay.delete': '30000' } })).body.id;
    await first.request('DELETE', `/guests/${id}`);
    await waitFor(async () => (await first.request('GET', `/guests/${id}`)).body.state === 'deleting', 10_000, 'the guest to show deleting');
    await first.kill9();

    const second = await agents.spawn({ config, dataDir: first.dataDir });
    const guest = (await second.request('GET', `/guests/${id}`)).body;
    expect(guest.state).to.equal('error');
    expect(guest.metadata['hyperkern.error']).to.equal('interrupted by agent restart');
    expect((await second.request('PATCH', `/guests/${id}/metadata`, { 'simulator.delay.delete': '' })).status).to.equal(200);
    expect((await second.request('DELETE', `/guests/${id}?wait=10`)).status).to.equal(200);
    expect((await second.request('GET', `/guests/${id}`)).status).to.equal(404);
  });
});
