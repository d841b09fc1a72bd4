/**
 * The Prometheus sweep works on the guests of its one listing: each guest's
 * JSON is parsed at most once per scrape (never once more per metrics
 * kind), and the registry's cache of parsed guests, which the jobs rely on,
 * is left alone. With more guests than that cache keeps (2,048), a sweep
 * that looked each guest up by id for each kind parsed about four times
 * per guest, and pushed every cached guest out.
 */
import { expect } from 'chai';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

const GUESTS = 2_200;

describe('GET /metrics: one parse per guest per scrape', function () {
  this.timeout(300_000);
  const agent = suiteAgent(() => ({ config: simulatorConfig({ logLevel: 'warn', accessLog: false, metrics: { scrapeDeadlineSeconds: 60 } }) }));

  before(async function () {
    this.timeout(300_000);
    let next = 0;
    const worker = async () => {
      while (next < GUESTS) {
        next += 1;
        const res = await agent.request('POST', '/guests?wait=30', { memory: 64, cpu: 1, nics: [{}], disks: [{ size: 16 }] });
        expect(res.status, res.text).to.equal(200);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  });

  it('parses no guest twice in a scrape of every running guest', async () => {
    const parse = JSON.parse;
    let guestParses = 0;
    // Guests are the only JSON texts holding "metadata" that the agent parses while it scrapes.
    JSON.parse = function (text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) {
      if (typeof text === 'string' && text.includes('"metadata"')) guestParses += 1;
      return parse(text, reviver);
    } as typeof JSON.parse;
    let res;
    try {
      res = await agent.request('GET', '/metrics');
    } finally {
      JSON.parse = parse;
    }
    expect(res.status).to.equal(200);
    // Every guest was swept: its cpu, NIC and disk counters are in the scrape.
    for (const family of ['hyperkern_guest_cpu_seconds_total', 'hyperkern_guest_nic_receive_bytes_total', 'hyperkern_guest_disk_read_bytes_total']) {
      const guests = new Set([...res.text.matchAll(new RegExp(`^${family}\\{guest="([^"]+)"`, 'gm'))].map((m) => m[1]));
      expect(guests.size, family).to.equal(GUESTS);
    }
    expect(guestParses, 'guest JSON parses in one scrape').to.be.at.most(GUESTS);
  });
});
