/**
 * config/simulator.json serves images, so the whole API can be tried
 * without a hypervisor: the images plugin beside the simulator keeps its
 * files in the agent's data dir. A fetch from a real loopback image server,
 * by a JavaScript client naming the source and by the Go client as
 * mistify's FetchImage (and lochness) call it: only the id, the agent's
 * image server as the source. A guest created on the image then passes the
 * create check; one naming an image the host lacks does not.
 */
import { expect } from 'chai';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, removeDir, waitFor } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { shippedConfig } from '../support/configs.js';
import { buildGoClient, goClient, removeGoClient } from '../support/go-client.js';
import { makeQcow2 } from '../support/image-files.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';

describe('images on config/simulator.json', function () {
  this.timeout(600_000);
  let work: string;
  let server: ImageServer;
  const agents = agentsPerTest();

  before(async () => {
    work = await makeTempDir('hk-sim-images-');
    const served = path.join(work, 'served');
    await mkdir(served);
    await makeQcow2(served, 'debian-12', 32, 1);
    server = await startImageServer(served);
    await buildGoClient();
  });
  after(async () => {
    await server?.close();
    await removeGoClient();
    if (work) await removeDir(work);
  });

  it('POST /images fetches into the data dir as a job; a create on the image passes, one on a missing image is a 400', async () => {
    const agent = await agents.inProcess({ config: shippedConfig('simulator.json') });
    const res = await agent.request('POST', '/images', { id: 'debian-12', type: '', dest: '', source: `${server.url}/debian-12` });
    expect(res.status, res.text).to.equal(202);
    const jobId = res.headers.get('x-guest-job-id')!;
    const job = await waitFor(async () => {
      const j = (await agent.request('GET', `/jobs/${jobId}`)).body;
      return j.Status === 'Complete' || j.Status === 'Error' ? j : undefined;
    }, 60_000, 'the fetch job to end');
    expect(job, job.Message).to.include({ Action: 'fetchImage', Status: 'Complete' });
    expect((await agent.request('GET', '/images/debian-12')).body).to.include({ id: 'debian-12', type: 'kvm', size: 32, status: 'complete' });
    expect(await readdir(path.join(agent.dataDir, 'plugins', 'images')), "the image is a file in the agent's data dir").to.include('debian-12');

    const created = await agent.request('POST', '/guests?wait=10', { memory: 64, disks: [{ image: 'debian-12' }] });
    expect(created.status, created.text).to.equal(200);
    expect(created.body.state).to.equal('running');
    const missing = await agent.request('POST', '/guests', { memory: 64, disks: [{ image: 'no-such-image' }] });
    expect(missing.status).to.equal(400);
    expect(missing.body.message).to.match(/image "no-such-image" is not on this host; fetch it first with POST \/images/);
  });

  it("the Go client's FetchImage path works: only the id, fetched from the agent's image server", async () => {
    const config = shippedConfig('simulator.json');
    // What an operator of a lochness cluster sets: where images come from.
    const images = config.plugins.find((p: { module: string }) => p.module === 'images');
    images.options = { ...images.options, imageServer: `${server.url}/` };
    const agent = await agents.inProcess({ config });
    const out = await goClient(agent.url, 'fetch-image', 'debian-12', '60');
    expect(out.accepted).to.include({ id: 'debian-12', status: 'pending' });
    expect(out.job).to.include({ Action: 'fetchImage', Status: 'Complete', GuestID: '' });
    expect(out.image).to.deep.equal({ id: 'debian-12', type: 'kvm', volume: 'debian-12', size: 32, status: 'complete' });
    expect(out.listed.map((i: { id: string }) => i.id)).to.deep.equal(['debian-12']);
    expect(server.requests).to.include('/debian-12');
  });
});
