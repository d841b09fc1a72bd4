/**
 * Turns the config's `plugins` list into running plugin instances and a
 * catalogue of stages. Checks run before anything is constructed: the
 * module loads, its default export is a manifest, it targets this plugin
 * API, its options parse, ids and stage names are unique, and every
 * dependency is configured. Each plugin gets its own child container, so a
 * plugin sees kernel services and its own options, never another's.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DependencyContainer } from 'tsyringe';
import type { PluginConfig } from '../config/config.js';
import { Errors, messageOf } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import {
  PLUGIN_API_VERSION,
  Tokens,
  type ActionStage,
  type MetricsStage,
  type PluginHealth,
  type PluginInstance,
  type PluginManifest,
  type StageKind,
} from '../contract/plugin-api.js';
import type { StageHandle } from './stage-handle.js';

/** dist/plugins, where built-in plugins are compiled to. */
const BUILTIN_PLUGINS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../plugins');

export interface PluginSlot {
  /** Instance id (stage prefix). */
  id: string;
  manifest: PluginManifest;
  config: PluginConfig;
  options: unknown;
  stages: Record<string, StageKind>;
  /** Where the plugin may keep files. */
  dataDir: string;
}

export interface LoadedPlugin extends PluginSlot {
  instance: PluginInstance;
}

/**
 * Runs a plugin out of process. Provided by the isolation module when it is
 * available; the loader itself knows nothing of child processes.
 */
export type IsolatedPluginFactory = (slot: PluginSlot, services: KernelServices) => Promise<PluginInstance>;
let isolatedFactory: IsolatedPluginFactory | undefined;
export function registerIsolatedPluginFactory(factory: IsolatedPluginFactory): void {
  isolatedFactory = factory;
}

/**
 * Reads the manifest of an external sub-agent (a config entry with
 * `command` instead of `module`) from its handshake. Provided by the
 * isolation module, like the factory above.
 */
export type ExternalManifestReader = (entry: PluginConfig, where: string, services: KernelServices) => Promise<PluginManifest>;
let externalManifestReader: ExternalManifestReader | undefined;
export function registerExternalManifestReader(reader: ExternalManifestReader): void {
  externalManifestReader = reader;
}

/** How an entry is named in messages: its module, or its command line. */
export function describePluginEntry(entry: PluginConfig): string {
  return entry.module ?? entry.command?.join(' ') ?? '(no module)';
}

export interface KernelServices {
  container: DependencyContainer;
  log: AgentLogger;
  dataDir: string;
  configFile: string;
}

/** Where a config's `module` string points. */
export function resolvePluginModule(specifier: string, configFile: string): string {
  if (specifier.startsWith('.') || path.isAbsolute(specifier)) {
    return pathToFileURL(path.resolve(path.dirname(configFile), specifier)).href;
  }
  if (/^[a-z][a-z0-9-]*$/.test(specifier)) {
    return pathToFileURL(path.join(BUILTIN_PLUGINS, specifier, 'index.js')).href;
  }
  return specifier;
}

export async function loadPlugins(entries: PluginConfig[], services: KernelServices): Promise<LoadedPlugin[]> {
  const slots: PluginSlot[] = [];
  for (const [index, entry] of entries.entries()) {
    slots.push(await readSlot(entry, index, services));
  }
  checkUniqueness(slots, services.configFile);
  checkDependencies(slots, services.configFile);
  const loaded: LoadedPlugin[] = [];
  try {
    for (const slot of slots) loaded.push({ ...slot, instance: await instantiate(slot, services) });
  } catch (error) {
    await Promise.allSettled(loaded.map((p) => p.instance.stop?.()));
    throw error;
  }
  return loaded;
}

async function readSlot(entry: PluginConfig, index: number, services: KernelServices): Promise<PluginSlot> {
  const where = `${services.configFile}: plugins[${index}] ("${describePluginEntry(entry)}")`;
  let module: { default?: unknown };
  if (entry.command) {
    if (!externalManifestReader) throw Errors.config(`${where}: "command" needs isolation support, which this build lacks; use "module"`);
    module = { default: await externalManifestReader(entry, where, services) };
  } else {
    const specifier = resolvePluginModule(entry.module!, services.configFile);
    try {
      module = await import(specifier);
    } catch (error) {
      const hint =
        (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND'
          ? ` (built-in plugins: ${await builtinPluginNames()}; a path is relative to the config file; did you run "npm run build"?)`
          : '';
      throw Errors.pluginLoad(`${where}: cannot load module ${specifier}: ${messageOf(error)}${hint}`, { cause: error });
    }
  }
  const manifest = module.default as PluginManifest | undefined;
  const problem = manifestProblem(manifest);
  if (problem) throw Errors.pluginLoad(`${where}: ${problem}`);
  if (manifest!.pluginApi !== PLUGIN_API_VERSION) {
    throw Errors.pluginLoad(`${where}: plugin "${manifest!.id}" ${manifest!.version} was written for plugin API ${manifest!.pluginApi}; this kernel provides plugin API ${PLUGIN_API_VERSION}`);
  }
  let options: unknown = entry.options;
  if (manifest!.options) {
    const parsed = manifest!.options.safeParse(entry.options);
    if (!parsed.success) {
      const lines = parsed.error.issues.map((i) => `  - plugins[${index}].options${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`);
      throw Errors.config(`${where}: invalid options:\n${lines.join('\n')}`);
    }
    options = parsed.data;
  }
  const id = entry.id ?? manifest!.id;
  const stages = typeof manifest!.stages === 'function' ? manifest!.stages(options) : manifest!.stages;
  return { id, manifest: manifest!, config: entry, options, stages, dataDir: path.join(services.dataDir, 'plugins', id) };
}

function manifestProblem(manifest: PluginManifest | undefined): string | undefined {
  if (!manifest || typeof manifest !== 'object') return 'the module has no default export; a plugin module must `export default definePlugin({...})`';
  const missing = (['id', 'version', 'pluginApi', 'stages', 'create'] as const).filter((k) => manifest[k] === undefined);
  if (missing.length) return `the manifest lacks ${missing.join(', ')}; make it with definePlugin()`;
  if (typeof manifest.create !== 'function') return 'the manifest\'s "create" is not a class';
  return undefined;
}

function checkUniqueness(slots: PluginSlot[], file: string): void {
  const seen = new Map<string, string>();
  for (const slot of slots) {
    const previous = seen.get(slot.id);
    if (previous) {
      throw Errors.config(`${file}: two plugins use the id "${slot.id}" (modules "${previous}" and "${describePluginEntry(slot.config)}"); give one of them another "id"`);
    }
    seen.set(slot.id, describePluginEntry(slot.config));
  }
}

function checkDependencies(slots: PluginSlot[], file: string): void {
  const ids = new Set(slots.map((s) => s.id));
  for (const slot of slots) {
    const missing = (slot.manifest.dependsOn ?? []).filter((d) => !ids.has(d));
    if (missing.length) {
      throw Errors.config(`${file}: plugin "${slot.id}" needs plugin(s) ${missing.map((m) => `"${m}"`).join(', ')}, which the config does not list; add them to "plugins"`);
    }
  }
}

async function instantiate(slot: PluginSlot, services: KernelServices): Promise<PluginInstance> {
  await mkdir(slot.dataDir, { recursive: true });
  let instance: PluginInstance;
  if (slot.config.isolate) {
    if (!isolatedFactory) {
      throw Errors.config(`${services.configFile}: plugin "${slot.id}" asks for "isolate": true, but this build has no isolation support; remove "isolate"`);
    }
    instance = await isolatedFactory(slot, services);
  } else {
    instance = constructInProcess(slot, services.container, services.log);
  }
  const missing = Object.keys(slot.stages).filter((name) => typeof instance.stages?.[name] !== 'function');
  if (missing.length) {
    throw Errors.pluginLoad(`plugin "${slot.id}" declares stage(s) ${missing.join(', ')} but its instance has no handler for them`);
  }
  return instance;
}

/** Build a plugin in its own child container (also used by the isolated child process). */
export function constructInProcess(slot: PluginSlot, root: DependencyContainer, log: AgentLogger): PluginInstance {
  const child = root.createChildContainer();
  child.register(Tokens.Options, { useValue: slot.options });
  child.register(Tokens.PluginId, { useValue: slot.id });
  child.register(Tokens.Logger, { useValue: log.child({ plugin: slot.id }) });
  child.register(Tokens.DataDir, { useValue: slot.dataDir });
  try {
    return child.resolve(slot.manifest.create);
  } catch (error) {
    throw Errors.pluginLoad(`plugin "${slot.id}" could not be constructed: ${messageOf(error)}`, { cause: error });
  }
}

/** Stage handles for every stage of every plugin, by full name. */
export function stageCatalogue(plugins: LoadedPlugin[]): Map<string, StageHandle> {
  const catalogue = new Map<string, StageHandle>();
  for (const plugin of plugins) {
    for (const [short, kind] of Object.entries(plugin.stages)) {
      const name = `${plugin.id}.${short}`;
      const instance = plugin.instance;
      catalogue.set(name, {
        name,
        plugin: plugin.id,
        kind,
        call: async (request, ctx) => {
          const handler = instance.stages[short] as ActionStage & MetricsStage;
          return handler.call(instance.stages, request as never, ctx);
        },
      });
    }
  }
  return catalogue;
}

export async function pluginHealth(plugins: LoadedPlugin[]): Promise<Record<string, PluginHealth>> {
  const out: Record<string, PluginHealth> = {};
  await Promise.all(
    plugins.map(async (p) => {
      try {
        out[p.id] = p.instance.health ? await p.instance.health() : { healthy: true };
      } catch (error) {
        out[p.id] = { healthy: false, message: `health check failed: ${messageOf(error)}` };
      }
    }),
  );
  return out;
}

async function builtinPluginNames(): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  try {
    return (await readdir(BUILTIN_PLUGINS, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).join(', ');
  } catch {
    return '(none built)';
  }
}
