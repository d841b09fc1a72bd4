/**
 * An agent process running container guests on real LXC, for the snapshot
 * and console tests through the API: config/agent.json without QEMU, the
 * images plugin fetching busybox images built offline (an `oci:` layout in
 * an allowed folder, so no registry is needed: the lifecycle test covers
 * the registry), the LXC plugin's containers under the test's data dir.
 * `cleanup` stops the agent and removes every container by name, mounts
 * and the folder, whatever the tests left.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { containerConfig } from '../support/configs.js';
import { containerNameOf, makeContainerTestDirs, removeContainerTest, type ContainerTestDirs } from '../support/lxc-containers.js';
import { buildBusyboxImage } from '../support/oci-registry.js';

export const run = promisify(execFile);

export interface ImageSpec {
  entrypoint: string[];
  cmd: string[];
}

export class ContainerAgent {
  agent!: RunningAgent;
  readonly work: string;
  readonly lxcPath: string;

  private constructor(private readonly dirs: ContainerTestDirs) {
    this.work = dirs.work;
    this.lxcPath = dirs.lxcPath;
  }

  /** Builds the images, starts the agent and fetches them (ids as given). */
  static async make(prefix: string, images: Record<string, ImageSpec>): Promise<ContainerAgent> {
    const world = new ContainerAgent(await makeContainerTestDirs(prefix));
    const { work, layouts } = world.dirs;
    for (const [id, spec] of Object.entries(images)) await buildBusyboxImage(work, layouts, id, '1.0', spec);
    await world.startAgent();
    for (const id of Object.keys(images)) {
      const res = await world.agent.request('POST', '/images?wait=60', { id, type: 'container', source: `oci:${path.join(layouts, id)}:1.0` });
      expect(res.status, res.text).to.equal(200);
    }
    return world;
  }

  /** The agent on this world's data dir (again, after a kill: the same containers and registry). */
  async startAgent(): Promise<void> {
    const config = containerConfig(this.work, { images: { fileSourceDirs: [this.dirs.layouts], allowedSchemes: ['http', 'https', 'file'] } });
    this.agent = await startAgent({ config: { ...config, logLevel: 'debug' }, dataDir: this.dirs.dataDir });
  }

  /** A running container guest of `image`, or created only with `start: false`. */
  async guest(image: string, start = true): Promise<string> {
    const res = await this.agent.request('POST', `/guests?wait=60${start ? '' : '&start=false'}`, { id: '', type: 'container', image, memory: 64, cpu: 1, nics: null, disks: null, metadata: null });
    expect(res.status, res.text).to.equal(200);
    return res.body.id as string;
  }

  /** Runs a lifecycle action to its end; the job. */
  async act(guestId: string, action: string): Promise<{ Status: string; Message: string }> {
    const res = await this.agent.request('POST', `/guests/${guestId}/${action}`, null);
    expect(res.status, res.text).to.equal(202);
    const jobId = res.headers.get('x-guest-job-id')!;
    return waitFor(async () => {
      const job = (await this.agent.request('GET', `/jobs/${jobId}`)).body;
      return job.Status === 'Complete' || job.Status === 'Error' ? job : undefined;
    }, 60_000, `${action} of ${guestId} to end`);
  }

  /** A shell command inside the running container (lxc-attach); its stdout. */
  async sh(guestId: string, command: string): Promise<string> {
    return (await run('lxc-attach', ['-n', containerNameOf(guestId), '-P', this.lxcPath, '--', '/bin/sh', '-c', command])).stdout;
  }

  containerDir(guestId: string): string {
    return path.join(this.lxcPath, containerNameOf(guestId));
  }

  async cleanup(): Promise<void> {
    await removeContainerTest(this.dirs, { agent: this.agent });
  }
}
