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
import { asPluginLogger, type AgentLogger } from '../logger.js';
import { Tokens, type ConstructedPlugin, type Guest, type GuestDirectory, type PluginDependencies, type PluginManifest, type StageKind } from '../contract/plugin-api.js';
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
import { OutgoingStreams } from './byte-streams.js';
import type { Readable } from 'node:stream';

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
let plugin: ConstructedPlugin | undefined;
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

/** Stages of other plugins live in the kernel's process, out of reach from here. */
const noDependencies: PluginDependencies = {
  stage: (plugin, stage) => {
    throw new Error(`an isolated plugin cannot use another plugin's stages (asked for ${plugin}.${stage}); run it in-process`);
  },
};

function needPlugin(): ConstructedPlugin {
  if (!plugin) throw new Error('the plugin is not initialised; the kernel must call "init" first');
  return plugin;
}

// Streams a download stage answers go out as notifications, within the kernel's credit.
const outgoing = new OutgoingStreams((method, params) => peer.notify(method, params));

const peer: RpcPeer = new RpcPeer({
  input: process.stdin,
  output: channelOut,
  methods: {
    [ChildMethods.hello]: async ([params]): Promise<HelloResult> => {
      const { protocol, module } = (params ?? {}) as HelloParams;
      if (protocol !== ISOLATION_PROTOCOL_VERSION) throw new Error(`kernel speaks isolation protocol ${protocol}; this child speaks ${ISOLATION_PROTOCOL_VERSION}`);
      if (typeof module !== 'string') throw new Error('hello needs the plugin module to load');
      moduleUrl = module;
      const exported: { default?: PluginManifest } = await import(module);
      manifest = exported.default;
      if (!manifest || typeof manifest.construct !== 'function') throw new Error(`${module} has no plugin manifest (made with definePlugin) as its default export`);
      return {
        protocol: ISOLATION_PROTOCOL_VERSION,
        id: manifest.id,
        version: manifest.version,
        pluginApi: manifest.pluginApi,
        description: manifest.description,
        // A TypeScript plugin's stages are known once it is built: "init" names them.
        stages: {},
      };
    },
    [ChildMethods.init]: ([params]): InitResult => {
      if (!manifest) throw new Error('init before hello');
      const { id, options, dataDir, logLevel } = params as InitParams;
      log = makeLogger(logLevel || 'info');
      instanceId = id;
      const slot: PluginSlot = {
        id,
        manifest,
        config: { module: moduleUrl, isolate: false, maxPending: 1, options: {} },
        options,
        dataDir,
      };
      const root = globalContainer.createChildContainer();
      root.register(Tokens.Guests, { useValue: new KernelGuestDirectory(peer) });
      plugin = constructInProcess(slot, root, log, noDependencies);
      const stages: Record<string, StageKind> = {};
      // A console is a live byte stream into the plugin's process, a migrator an object of callbacks: neither crosses the protocol (docs/console.md, docs/migration.md).
      for (const [name, stage] of Object.entries(plugin.stages)) if (stage.kind !== 'console' && stage.kind !== 'migration') stages[name] = stage.kind;
      return { stages };
    },
    [ChildMethods.start]: async () => {
      await needPlugin().instance.start?.();
      return null;
    },
    [ChildMethods.stage]: async ([params], msgid) => {
      const { stage, request, timeoutMs, jobId } = params as StageParams;
      const { stages } = needPlugin();
      const handler = Object.hasOwn(stages, stage) ? stages[stage] : undefined;
      if (!handler) throw new Error(`no stage "${stage}" in plugin "${instanceId}"`);
      const controller = new AbortController();
      running.set(msgid, controller);
      // The kernel cancels on its own timeout; this is the backstop if the cancel is lost.
      const timer = setTimeout(() => controller.abort(new Error(`stage ${instanceId}.${stage} did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
      try {
        const name = `${instanceId}.${stage}`;
        const stageLog = asPluginLogger(log.child({ stage: name, job: jobId }));
        const result = (await handler.invokeUnchecked(request, { stage: name, signal: controller.signal, timeoutMs, jobId, log: stageLog })) ?? null;
        if (handler.kind !== 'snapshotDownload') return result;
        const { stream, size } = (result ?? {}) as { stream?: Readable; size?: number };
        if (!stream || typeof stream.pipe !== 'function') throw new Error(`stage ${name} answered no stream; a download stage answers {stream: Readable, size?}`);
        return outgoing.send(stream, typeof size === 'number' ? size : undefined);
      } finally {
        clearTimeout(timer);
        running.delete(msgid);
      }
    },
    [ChildMethods.health]: async () => (plugin?.instance.health ? await plugin.instance.health() : { healthy: true }),
    [ChildMethods.ping]: () => 'pong',
    [ChildMethods.stop]: async () => {
      await shutdown();
      return null;
    },
  },
  notifications: {
    ...outgoing.handlers,
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
  outgoing.destroyAll();
  try {
    await plugin?.instance.stop?.();
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
