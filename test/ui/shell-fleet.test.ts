/**
 * The fleet page and GET /fleet/hosts against a real etcd and two real
 * agents with the fleet plugin: the API lists both live hosts with their
 * capacity (this host marked), an agent without the plugin answers 501,
 * and the page (offered in the navigation only when the plugin is on) shows
 * each host's free capacity and links to that host's own console; GET
 * /host and the host view answer the totals the fleet publishes (the
 * plugin's capacity override), the machine's without the plugin.
 */
import os from 'node:os';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { agentsPerTest } from '../support/agent-hooks.js';
import { launchChromium, newPage, screenshot } from '../support/chromium.js';
import { simulatorConfig } from '../support/configs.js';
import { startEtcd, type EtcdServer } from '../support/etcd-server.js';
import type { TestAgent } from '../support/agent.js';

const UI_TIMEOUT = 60_000;

function fleetConfig(endpoint: string, hostId: string, capacity: Record<string, number>): object {
  const base = simulatorConfig();
  return {
    ...base,
    plugins: [...base.plugins, { module: 'fleet', options: { etcd: { endpoints: [endpoint], prefix: '/hk-ui-test', leaseTtlSeconds: 10, callTimeoutMs: 3000 }, hostId, metadataKeys: ['name'], capacity } }],
  };
}

/** Polls GET /fleet/hosts until `count` hosts are listed (each agent registers in the background). */
async function hostsListed(agent: TestAgent, count: number): Promise<Array<Record<string, any>>> {
  const deadline = Date.now() + UI_TIMEOUT;
  for (;;) {
    const res = await agent.request('GET', '/fleet/hosts');
    expect(res.status, res.text).to.equal(200);
    if (res.body.hosts.length >= count || Date.now() > deadline) return res.body.hosts;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('web console: the fleet page', function () {
  this.timeout(240_000);
  const agents = agentsPerTest();
  let etcd: EtcdServer;
  let browser: Browser;

  before(async () => {
    etcd = await startEtcd();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await etcd?.dispose();
  });

  it('GET /fleet/hosts is 501 on an agent without the fleet plugin', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig() });
    const res = await agent.request('GET', '/fleet/hosts');
    expect(res.status).to.equal(501);
    expect(res.body.message).to.match(/fleet plugin/);
    const host = await agent.request('GET', '/host');
    expect(host.status, host.text).to.equal(200);
    expect(host.body.cpus.total, 'no fleet: the machine').to.equal(os.cpus().length);
    expect(host.body.memoryMiB.total).to.equal(Math.floor(os.totalmem() / 1024 / 1024));
  });

  it('lists the live hosts with their capacity and links each to its own console', async () => {
    const a = await agents.inProcess({ config: fleetConfig(etcd.endpoint, 'ui-host-a', { cpus: 8, memoryMiB: 16384 }) });
    const b = await agents.inProcess({ config: fleetConfig(etcd.endpoint, 'ui-host-b', { cpus: 32, memoryMiB: 65536 }) });
    const made = await b.request('POST', '/guests?wait=10', { cpu: 4, memory: 2048, disks: [{ size: 8 }], metadata: { name: 'on-b' } });
    expect(made.status, made.text).to.equal(200);
    let hosts = await hostsListed(a, 2);
    // b's record follows its guest within the link's batch window.
    const deadline = Date.now() + UI_TIMEOUT;
    while (hosts.find((h) => h.hostId === 'ui-host-b')?.cpus.allotted !== 4 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      hosts = await hostsListed(a, 2);
    }
    expect(hosts.map((h) => [h.hostId, h.self, h.apiUrl])).to.deep.equal([
      ['ui-host-a', true, a.url],
      ['ui-host-b', false, b.url],
    ]);
    expect(hosts[1].cpus).to.deep.equal({ total: 32, allotted: 4, free: 28 });
    expect(hosts[1].memoryMiB).to.deep.equal({ total: 65536, allotted: 2048, free: 63488 });
    // Each agent's own GET /host answers what its fleet record publishes: the capacity override.
    for (const [agent, record] of [[a, hosts[0]], [b, hosts[1]]] as const) {
      const own = await agent.request('GET', '/host');
      expect(own.status, own.text).to.equal(200);
      // (Guests by state aside: the record follows a start within the link's batch window.)
      expect({ cpus: own.body.cpus, memoryMiB: own.body.memoryMiB }, record.hostId).to.deep.equal({ cpus: record.cpus, memoryMiB: record.memoryMiB });
    }
    expect(hosts[0].cpus.total).to.equal(8);

    const page = await newPage(browser);
    // b's host view: its totals are the ones the fleet publishes.
    await page.goto(`${b.url}/ui`);
    // The totals (GET /host) can be drawn before the guest list has loaded ("0 of 32"
    // for a moment): wait for the allotted count too, not just the total.
    const capacity = page.getByRole('definition').filter({ hasText: /^4 of 32$/ });
    await capacity.waitFor({ timeout: UI_TIMEOUT });
    expect(await capacity.innerText()).to.equal('4 of 32');
    await page.goto(`${a.url}/ui`);
    const nav = page.getByRole('navigation', { name: 'Views' });
    await nav.getByRole('link', { name: 'Fleet' }).click();
    const link = page.getByRole('link', { name: 'ui-host-b: open its console' });
    await link.waitFor({ timeout: UI_TIMEOUT });
    expect(await link.getAttribute('href')).to.equal(`${b.url}/ui`);
    const row = page.getByRole('row', { name: /ui-host-b/ });
    expect(await row.getByRole('cell').allInnerTexts()).to.deep.equal(['ok', '28 / 32', '63488 / 65536 MiB', '1 running', hosts[1].version]);
    expect(await page.getByRole('row', { name: /ui-host-a/ }).innerText()).to.include('(this host)');
    await screenshot(page, 'ui-fleet-view');
    // The link opens b's own console, which lists b's guest.
    await link.click();
    await page.waitForURL(`${b.url}/ui`, { timeout: UI_TIMEOUT });
    await page.getByRole('link', { name: 'on-b', exact: true }).waitFor({ timeout: UI_TIMEOUT });
    await page.context().close();
  });

  it('offers no fleet page in the navigation of an agent without the plugin', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig() });
    const page = await newPage(browser);
    await page.goto(`${agent.url}/ui`);
    const nav = page.getByRole('navigation', { name: 'Views' });
    await nav.getByRole('link', { name: 'Jobs' }).waitFor({ timeout: UI_TIMEOUT });
    // Health is polled right after the first draw: give it its answer.
    await page.locator('.plugins').waitFor({ timeout: UI_TIMEOUT });
    expect(await nav.getByRole('link', { name: 'Fleet' }).count()).to.equal(0);
    await page.goto(`${agent.url}/ui#/fleet`);
    await page.getByText('This agent has no fleet plugin').waitFor({ timeout: UI_TIMEOUT });
    await page.context().close();
  });
});
