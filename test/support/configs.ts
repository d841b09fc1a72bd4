/** Config objects for tests, derived from the shipped config files so tests use what operators use. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './agent.js';

export function shippedConfig(name: string): any {
  return JSON.parse(readFileSync(path.join(repoRoot, 'config', name), 'utf8'));
}

/** config/simulator.json with the given top-level keys replaced and simulator options merged. */
export function simulatorConfig(overrides: { simulator?: Record<string, unknown>; jobs?: Record<string, unknown>; [key: string]: unknown } = {}): any {
  const config = shippedConfig('simulator.json');
  const { simulator, jobs, ...rest } = overrides;
  if (simulator) {
    const entry = config.plugins.find((p: { module: string }) => p.module === 'simulator');
    entry.options = { ...entry.options, ...simulator };
  }
  if (jobs) config.jobs = { ...config.jobs, ...jobs };
  // The data dir comes from --data-dir in tests; logs stay quiet unless debugging.
  return { ...config, logLevel: 'info', ...rest };
}

/** The image actions as config/agent.json ships them. */
const IMAGE_ACTIONS = ['fetchImage', 'listImages', 'getImage', 'deleteImage', 'uploadImage'];

/**
 * A config with the images plugin (options merged over config/agent.json's)
 * and its actions as shipped; create gets the shipped image check first.
 */
export function withImages(config: any, options: Record<string, unknown>): any {
  const shipped = shippedConfig('agent.json');
  const entry = shipped.plugins.find((p: { module: string }) => p.module === 'images');
  const actions = { ...config.actions };
  for (const name of IMAGE_ACTIONS) actions[name] = shipped.actions[name];
  // Only the images plugin's own create check: the shipped backend's (qemu.checkCreate) is not in this config.
  const imageChecks = shipped.actions.create.sync.filter((ref: string) => ref.startsWith('images.'));
  actions.create = { ...actions.create, sync: [...imageChecks, ...(actions.create?.sync ?? [])] };
  return { ...config, plugins: [...config.plugins, { ...entry, options: { ...entry.options, ...options } }], actions };
}
