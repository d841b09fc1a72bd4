/**
 * A real etcd (Debian's etcd-server) for tests and benchmarks: one member
 * on loopback ports, its own temporary data dir, stopped by PID. It can be
 * stopped and started again on the same ports and data, as an outage would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { makeTempDir, removeDir } from './agent.js';
import { freePort } from './free-port.js';

export interface EtcdServer {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  dataDir: string;
  pid(): number | undefined;
  /** SIGTERM and wait for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Start again on the same ports and data dir; resolves when it answers. */
  restart(): Promise<void>;
  /** Stop and remove the data dir. */
  dispose(): Promise<void>;
}

export async function startEtcd(): Promise<EtcdServer> {
  const dataDir = await makeTempDir('hyperkern-etcd-');
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const output: string[] = [];

  const launch = async () => {
    const proc = spawn(
      'etcd',
      [
        '--name', 'hk-test',
        '--data-dir', dataDir,
        '--listen-client-urls', endpoint,
        '--advertise-client-urls', endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `hk-test=${peer}`,
        '--logger', 'zap',
        '--log-level', 'warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      output.push(chunk);
      if (output.length > 200) output.shift();
    });
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitUntilServing(endpoint, proc, output);
  };

  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const force = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(force);
  };

  try {
    await launch();
  } catch (error) {
    await stop();
    await removeDir(dataDir);
    throw error;
  }
  return {
    endpoint,
    dataDir,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    dispose: async () => {
      await stop();
      await removeDir(dataDir);
    },
  };
}

/** Polls a read until etcd answers, at most 30 s. */
async function waitUntilServing(endpoint: string, proc: ChildProcess, output: string[]): Promise<void> {
  const client = new Etcd3({ hosts: endpoint, defaultCallOptions: () => ({ deadline: Date.now() + 1000 }) });
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`etcd exited (${proc.exitCode ?? proc.signalCode}) before serving: ${output.join('')}`);
      try {
        await client.get('hyperkern-test-probe').string();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`etcd did not answer on ${endpoint} within 30 s: ${output.join('')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    client.close();
  }
}
