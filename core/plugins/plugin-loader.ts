/**
 * core/plugins: plugin loading (manifests, API version, options, ids,
 * dependency order), the stage catalogue, one stage call with its timeout.
 * May import: contract, config, errors, logger.
 *
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
  isStageKind,
  type ConfigDialect,
  type ConstructedPlugin,
  type PluginDependencies,
  type PluginHealth,
  type PluginManifest,
  type StageHandler,
  type StageKind,
  type StageResponseOf,
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
  /** Where the plugin may keep files. */
  dataDir: string;
}

/** A plugin constructed (in-process or as a stand-in for a child process), with its stages. */
export interface LoadedPlugin extends PluginSlot, ConstructedPlugin {}

/**
 * Process isolation, as the kernel hands it to the loader (the loader
 * itself knows no child processes): runs `"isolate": true` entries out of
 * process, and reads the manifest of `command` entries (external
 * sub-agents) from their handshake.
 */
export interface PluginIsolation {
  construct(slot: PluginSlot, services: KernelServices): Promise<ConstructedPlugin>;
  readExternalManifest(entry: PluginConfig, where: string, services: KernelServices): Promise<PluginManifest>;
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
  /** Absent in a build without process isolation. */
  isolation?: PluginIsolation;
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
  const ordered = dependencyOrder(slots, services.configFile);
  const loaded: LoadedPlugin[] = [];
  try {
    for (const slot of ordered) loaded.push({ ...slot, ...(await instantiate(slot, services, loaded)) });
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
    if (!services.isolation) throw Errors.isolationUnavailable(`${where}: "command" needs isolation support, which this build lacks; use "module"`);
    module = { default: await services.isolation.readExternalManifest(entry, where, services) };
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
      throw Errors.pluginOptions(`${where}: invalid options:\n${lines.join('\n')}`);
    }
    options = parsed.data;
  }
  const id = entry.id ?? manifest!.id;
  return { id, manifest: manifest!, config: entry, options, dataDir: path.join(services.dataDir, 'plugins', id) };
}

function manifestProblem(manifest: PluginManifest | undefined): string | undefined {
  if (!manifest || typeof manifest !== 'object') return 'the module has no default export; a plugin module must `export default definePlugin({...})`';
  const missing = (['id', 'version', 'pluginApi', 'stages', 'create'] as const).filter((k) => manifest[k] === undefined);
  if (missing.length) return `the manifest lacks ${missing.join(', ')}; make it with definePlugin()`;
  if (typeof manifest.create !== 'function') return 'the manifest\'s "create" is not a class';
  if (typeof manifest.construct !== 'function') return 'the manifest was not made with definePlugin() (it has no "construct")';
  return undefined;
}

function checkUniqueness(slots: PluginSlot[], file: string): void {
  const seen = new Map<string, string>();
  for (const slot of slots) {
    const previous = seen.get(slot.id);
    if (previous) {
      throw Errors.pluginIdTaken(`${file}: two plugins use the id "${slot.id}" (modules "${previous}" and "${describePluginEntry(slot.config)}"); give one of them another "id"`);
    }
    seen.set(slot.id, describePluginEntry(slot.config));
  }
}

/**
 * The slots in an order where every plugin comes after those it depends on
 * (config order otherwise): construction and start follow it, stop reverses it.
 */
function dependencyOrder(slots: PluginSlot[], file: string): PluginSlot[] {
  const byId = new Map(slots.map((s) => [s.id, s]));
  for (const slot of slots) {
    const missing = (slot.manifest.dependsOn ?? []).filter((d) => !byId.has(d));
    if (missing.length) {
      throw Errors.pluginDependency(`${file}: plugin "${slot.id}" needs plugin(s) ${missing.map((m) => `"${m}"`).join(', ')}, which the config does not list; add them to "plugins"`);
    }
  }
  const ordered: PluginSlot[] = [];
  const done = new Set<string>();
  const visit = (slot: PluginSlot, path: string[]): void => {
    if (done.has(slot.id)) return;
    if (path.includes(slot.id)) {
      const cycle = [...path.slice(path.indexOf(slot.id)), slot.id];
      throw Errors.pluginDependency(`${file}: plugins depend on each other in a cycle (${cycle.map((c) => `"${c}"`).join(' -> ')}); remove one of these "dependsOn" links`);
    }
    for (const dependency of slot.manifest.dependsOn ?? []) visit(byId.get(dependency)!, [...path, slot.id]);
    done.add(slot.id);
    ordered.push(slot);
  };
  for (const slot of slots) visit(slot, []);
  return ordered;
}

async function instantiate(slot: PluginSlot, services: KernelServices, earlier: LoadedPlugin[]): Promise<ConstructedPlugin> {
  await mkdir(slot.dataDir, { recursive: true });
  let constructed: ConstructedPlugin;
  if (slot.config.isolate) {
    if (!services.isolation) {
      throw Errors.isolationUnavailable(`${services.configFile}: plugin "${slot.id}" asks for "isolate": true, but this build has no isolation support; remove "isolate"`);
    }
    constructed = await services.isolation.construct(slot, services);
  } else {
    constructed = constructInProcess(slot, services.container, services.log, dependenciesOf(slot, earlier));
  }
  const missing = Object.entries(constructed.stages ?? {})
    .filter(([, stage]) => typeof stage?.invoke !== 'function' || !isStageKind(stage.kind))
    .map(([name]) => name);
  if (!constructed.stages || missing.length) {
    throw Errors.pluginLoad(`plugin "${slot.id}" declares stage(s) ${missing.join(', ') || '(no stage list)'} but its instance has no handler for them; make each with actionStage()/metricsStage()`);
  }
  const badName = Object.keys(constructed.stages).find((name) => !/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name));
  if (badName !== undefined) {
    throw Errors.pluginLoad(`plugin "${slot.id}": stage name "${badName}" must start with a letter and hold only letters, digits, "_", "." and "-"`);
  }
  return constructed;
}

/** The stages of the plugins a slot depends on, typed by kind (see PluginDependencies). */
export function dependenciesOf(slot: Pick<PluginSlot, 'id' | 'manifest'>, plugins: LoadedPlugin[]): PluginDependencies {
  const allowed = new Set(slot.manifest.dependsOn ?? []);
  return {
    stage<K extends StageKind>(pluginId: string, stageName: string, kind: K): StageHandler<K> {
      const where = `plugin "${slot.id}" asked for stage ${pluginId}.${stageName}`;
      if (!allowed.has(pluginId)) throw new Error(`${where}, but its manifest's "dependsOn" does not list "${pluginId}"`);
      const stage = plugins.find((p) => p.id === pluginId)?.stages[stageName];
      if (!stage) throw new Error(`${where}, which plugin "${pluginId}" does not have`);
      if (stage.kind !== kind) throw new Error(`${where} as a ${kind} stage; it is a ${stage.kind} stage`);
      // invoke() checks and reads the answer by its kind, as for every stage call.
      return async (request, ctx) => (await stage.invoke(request, ctx)) as StageResponseOf<K>;
    },
  };
}

/** Build a plugin in its own child container (also used by the isolated child process). */
export function constructInProcess(slot: PluginSlot, root: DependencyContainer, log: AgentLogger, dependencies: PluginDependencies): ConstructedPlugin {
  const child = root.createChildContainer();
  child.register(Tokens.Options, { useValue: slot.options });
  child.register(Tokens.PluginId, { useValue: slot.id });
  child.register(Tokens.Logger, { useValue: log.child({ plugin: slot.id }) });
  child.register(Tokens.DataDir, { useValue: slot.dataDir });
  child.register(Tokens.Dependencies, { useValue: dependencies });
  try {
    return slot.manifest.construct((cls) => child.resolve(cls));
  } catch (error) {
    throw Errors.pluginLoad(`plugin "${slot.id}" could not be constructed: ${messageOf(error)}`, { cause: error });
  }
}

/** Stage handles for every stage of every plugin, by full name. */
export function stageCatalogue(plugins: LoadedPlugin[]): Map<string, StageHandle> {
  const catalogue = new Map<string, StageHandle>();
  for (const plugin of plugins) {
    for (const [short, stage] of Object.entries(plugin.stages)) {
      const name = `${plugin.id}.${short}`;
      catalogue.set(name, { name, plugin: plugin.id, kind: stage.kind, call: (request, ctx) => stage.invoke(request, ctx) });
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

/**
 * The config dialects the built-in plugins contribute (their manifests'
 * `configDialect`), in folder order. Importing a plugin module has no side
 * effects, so reading every manifest is safe.
 */
export async function builtinConfigDialects(): Promise<ConfigDialect[]> {
  const { readdir } = await import('node:fs/promises');
  let names: string[];
  try {
    names = (await readdir(BUILTIN_PLUGINS, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    return [];
  }
  const dialects: ConfigDialect[] = [];
  for (const name of names) {
    const exported: { default?: Partial<PluginManifest> } = await import(pathToFileURL(path.join(BUILTIN_PLUGINS, name, 'index.js')).href).catch(() => ({}));
    const dialect = exported.default?.configDialect;
    if (typeof dialect === 'function') dialects.push(dialect);
  }
  return dialects;
}

async function builtinPluginNames(): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  try {
    return (await readdir(BUILTIN_PLUGINS, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).join(', ');
  } catch {
    return '(none built)';
  }
}
