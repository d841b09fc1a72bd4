/**
 * `hyperkern images` in a real terminal: fetch --wait from a real loopback
 * server that sends the image slowly shows a byte progress bar, then the
 * outcome; ls, upload and rm --wait against the same agent.
 */
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { expect } from 'chai';
import { distRoot, makeTempDir, removeDir } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig, withImages } from '../support/configs.js';
import { makeRaw } from '../support/image-files.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';
import { Terminal } from './terminal.js';

const CLI = `${process.execPath} ${path.join(distRoot, 'cli/hyperkern.js')}`;

describe('CLI: hyperkern images in a terminal', function () {
  this.timeout(120000);
  let work: string;
  let served: string;
  let server: ImageServer;
  let terminal: Terminal;
  let env: Record<string, string>;

  before(async () => {
    work = await makeTempDir('hk-cli-images-');
    served = path.join(work, 'served');
    await mkdir(served);
    // 2 MiB in 64 KiB pieces every 100 ms: about 3 s of visible progress.
    await makeRaw(served, 'disk.raw', 2);
    server = await startImageServer(served);
  });
  // The CLI is the child process here; the agent it talks to runs in-process.
  const agent = suiteAgent(() => ({ config: withImages(simulatorConfig(), { imagesDir: path.join(work, 'images') }) }));
  before(async () => {
    env = { HYPERKERN_URL: agent.url, XDG_CONFIG_HOME: '/nonexistent' };
    terminal = new Terminal();
  });
  after(async () => {
    await terminal?.close();
    await server?.close();
    if (work) await removeDir(work);
  });

  it('fetch --wait shows a byte progress bar, then complete; ls lists it; rm --wait deletes it', async () => {
    const session = await terminal.run(`${CLI} images fetch slowdisk --source ${server.url}/slow/disk.raw --wait`, env);
    const screens = await terminal.watch(session, /EXIT=\d+/, 90000);
    expect(screens.some((s) => /\[#*-+\] \d+\.\d MiB of 2\.0 MiB \(\d+%\)/.test(s)), `a progress bar while it ran:\n${screens.join('\n---\n')}`).to.equal(true);
    expect(screens[screens.length - 1]).to.match(/✔ .* complete in [\s\S]*EXIT=0/);
    const ls = await terminal.run(`${CLI} images ls`, env);
    expect((await terminal.watch(ls, /EXIT=\d+/, 30000)).pop()).to.match(/slowdisk +complete +2 MiB[\s\S]*EXIT=0/);
    const upload = await terminal.run(`${CLI} images upload updisk ${path.join(served, 'disk.raw')}`, env);
    expect((await terminal.watch(upload, /EXIT=\d+/, 30000)).pop()).to.match(/uploaded updisk: 2 MiB, complete[\s\S]*EXIT=0/);
    const rm = await terminal.run(`${CLI} images rm slowdisk --wait`, env);
    expect((await terminal.watch(rm, /EXIT=\d+/, 30000)).pop()).to.match(/✔ .* complete[\s\S]*EXIT=0/);
    const gone = await agent.request('GET', '/images/slowdisk');
    expect(gone.status).to.equal(404);
  });
});
