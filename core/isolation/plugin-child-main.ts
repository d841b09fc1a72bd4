#!/usr/bin/env node
/**
 * Entry point of the child process that runs a TypeScript plugin isolated.
 * It speaks docs/isolation-protocol.md on stdin/stdout and builds the plugin
 * exactly as the kernel would in-process (constructInProcess), so a plugin
 * module needs no change to run either way. The plugin's GuestDirectory is
 * a proxy whose calls go back to the kernel.
 *
 * stdout carries the protocol and nothing else: it is taken for the channel
 * before any plugin code runs, and `process.stdout` (so console.log too) is
 * pointed at stderr, which the kernel reads as the plugin's log.
 */
import 'reflect-metadata';
import { pino } from 'pino';
import { container as globalContainer } from 'tsyringe';
import { messageOf } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import { Tokens, type ActionStage, type Guest, type GuestDirectory, type PluginInstance, type PluginManifest, type StageKind } from '../contract/plugin-api.js';
import { constructInProcess, type PluginSlot } from '../plugins/plugin-loader.js';
import {
  ChildMethods,
  ChildNotifications,
  ISOLATION_PROTOCOL_VERSION,
  KernelMethods,
  type HelloParams,
  type HelloResult,
  type InitParams,
  type InitResult,
  type StageParams,
} from './protocol.js';
import { RpcPeer } from './rpc-peer.js';

const channelOut = process.stdout;
Object.defineProperty(process, 'stdout', { configurable: true, enumerable: true, get: () => process.stderr });

function makeLogger(level: string): AgentLogger {
  return pino(
    {
      level,
      base: { name: 'hyperkern-plugin' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

let log = makeLogger('info');
let manifest: PluginManifest | undefined;
let moduleUrl = '';
let instance: PluginInstance | undefined;
let instanceId = '';
const running = new Map<number, AbortController>();
let stopping = false;

/** The plugin's view of the guest registry: every call is answered by the kernel. */
class KernelGuestDirectory implements GuestDirectory {
  constructor(private readonly peer: RpcPeer) {}
  async list(): Promise<Guest[]> {
    return (await this.peer.call<Guest[]>(KernelMethods.guestsList, [])) ?? [];
  }
  async get(id: string): Promise<Guest | undefined> {
    return (await this.peer.call<Guest | null>(KernelMethods.guestsGet, [id])) ?? undefined;
  }
  async observe(id: string, change: Partial<Omit<Guest, 'id'>>, reason: string): Promise<void> {
    await this.peer.call(KernelMethods.guestsObserve, [id, change, reason]);
  }
}

function needInstance(): PluginInstance {
  if (!instance) throw new Error('the plugin is not initialised; the kernel must call "init" first');
  return instance;
}

const peer: RpcPeer = new RpcPeer({
  input: process.stdin,
  output: channelOut,
  methods: {
    [ChildMethods.hello]: async ([params]): Promise<HelloResult> => {
      const { protocol, module } = (params ?? {}) as HelloParams;
      if (protocol !== ISOLATION_PROTOCOL_VERSION) throw new Error(`kernel speaks isolation protocol ${protocol}; this child speaks ${ISOLATION_PROTOCOL_VERSION}`);
      if (typeof module !== 'string') throw new Error('hello needs the plugin module to load');
      moduleUrl = module;
      manifest = ((await import(module)) as { default?: PluginManifest }).default;
      if (!manifest || typeof manifest.create !== 'function') throw new Error(`${module} has no plugin manifest as its default export`);
      return {
        protocol: ISOLATION_PROTOCOL_VERSION,
        id: manifest.id,
        version: manifest.version,
        pluginApi: manifest.pluginApi,
        description: manifest.description,
        stages: typeof manifest.stages === 'function' ? {} : manifest.stages,
      };
    },
    [ChildMethods.init]: ([params]): InitResult => {
      if (!manifest) throw new Error('init before hello');
      const { id, options, dataDir, logLevel } = params as InitParams;
      log = makeLogger(logLevel || 'info');
      instanceId = id;
      const stages: Record<string, StageKind> = typeof manifest.stages === 'function' ? manifest.stages(options) : manifest.stages;
      const slot: PluginSlot = {
        id,
        manifest,
        config: { module: moduleUrl, isolate: false, maxPending: 1, options: {} },
        options,
        stages,
        dataDir,
      };
      const root = globalContainer.createChildContainer();
      root.register(Tokens.Guests, { useValue: new KernelGuestDirectory(peer) });
      instance = constructInProcess(slot, root, log);
      return { stages };
    },
    [ChildMethods.start]: async () => {
      await needInstance().start?.();
      return null;
    },
    [ChildMethods.stage]: async ([params], msgid) => {
      const { stage, request, timeoutMs, jobId } = params as StageParams;
      const plugin = needInstance();
      const handler = Object.hasOwn(plugin.stages, stage) ? (plugin.stages[stage] as ActionStage) : undefined;
      if (typeof handler !== 'function') throw new Error(`no stage "${stage}" in plugin "${instanceId}"`);
      const controller = new AbortController();
      running.set(msgid, controller);
      // The kernel cancels on its own timeout; this is the backstop if the cancel is lost.
      const timer = setTimeout(() => controller.abort(new Error(`stage ${instanceId}.${stage} did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
      try {
        const name = `${instanceId}.${stage}`;
        return (await handler.call(plugin.stages, request as never, { stage: name, signal: controller.signal, timeoutMs, jobId, log: log.child({ stage: name, job: jobId }) as never })) ?? null;
      } finally {
        clearTimeout(timer);
        running.delete(msgid);
      }
    },
    [ChildMethods.health]: async () => (instance?.health ? await instance.health() : { healthy: true }),
    [ChildMethods.ping]: () => 'pong',
    [ChildMethods.stop]: async () => {
      await shutdown();
      return null;
    },
  },
  notifications: {
    [ChildNotifications.cancel]: ([msgid]) => {
      running.get(Number(msgid))?.abort(new Error('cancelled by the kernel (the stage timed out or the agent is stopping)'));
    },
  },
  onClose: (reason) => {
    // The kernel went away (or sent garbage): nothing can reach this plugin any more.
    void shutdown().finally(() => {
      log.flush?.();
      process.exit(reason.name === 'ProtocolError' ? 70 : 0);
    });
  },
});

async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const controller of running.values()) controller.abort(new Error('the plugin is stopping'));
  try {
    await instance?.stop?.();
  } catch (error) {
    log.warn({ error: messageOf(error) }, 'plugin did not stop cleanly');
  }
}

// The kernel decides when this process ends: a terminal's Ctrl-C reaches the
// whole process group, and the kernel stops its plugins in order on its own.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => {
  void shutdown().finally(() => process.exit(0));
});
