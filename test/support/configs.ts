/** Config objects for tests, derived from the shipped config files so tests use what operators use. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './agent.js';
import { GUEST_ACTION_SECONDS } from './load-budget.js';

/**
 * A shipped config, with an empty `actions` when it has none (every plan
 * derived), so a test can override one plan: `config.actions.create = {...}`.
 */
export function shippedConfig(name: string): any {
  const config = JSON.parse(readFileSync(path.join(repoRoot, 'config', name), 'utf8'));
  return { ...config, actions: config.actions ?? {} };
}

/**
 * config/qemu.json for tests: QEMU under TCG (guests under KVM never reach
 * init on these machines), QEMU's and the images plugin's disks in
 * `imagesDir` (the images plugin checks creates against the folder QEMU
 * builds disks from), guest actions bounded by the load budget; `qemu`
 * options merged last.
 */
export function tcgQemuConfig(imagesDir: string, qemu: Record<string, unknown> = {}): any {
  const config = shippedConfig('qemu.json');
  const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
  entry.options = { ...entry.options, accel: 'tcg', imagesDir, shutdownTimeoutSeconds: GUEST_ACTION_SECONDS, rebootTimeoutSeconds: GUEST_ACTION_SECONDS, ...qemu };
  const images = config.plugins.find((p: { module: string }) => p.module === 'images');
  if (images) images.options = { ...images.options, imagesDir };
  return { ...config, logLevel: 'info' };
}

/**
 * config/agent.json for container tests (containerTestDirs' layout in
 * `work`): without QEMU (not needed), the images plugin's disks in
 * work/images and its container bases in work/bases, where the LXC plugin
 * reads them; `images` and `lxc` options merged last.
 */
export function containerConfig(work: string, options: { images?: Record<string, unknown>; lxc?: Record<string, unknown> } = {}): any {
  const config = shippedConfig('agent.json');
  const containerImagesDir = path.join(work, 'bases');
  const plugins = config.plugins
    .filter((p: { module: string }) => p.module !== 'qemu')
    .map((p: { module: string; options?: Record<string, unknown> }) =>
      p.module === 'images'
        ? { ...p, options: { ...p.options, imagesDir: path.join(work, 'images'), containerImagesDir, ...options.images } }
        : p.module === 'lxc'
          ? { ...p, options: { ...p.options, containerImagesDir, ...options.lxc } }
          : p,
    );
  return { ...config, plugins };
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

/**
 * A config with the images plugin (options merged over config/agent.json's);
 * the plans of its actions, and its check in create, are derived.
 */
export function withImages(config: any, options: Record<string, unknown>): any {
  const shipped = shippedConfig('agent.json');
  const entry = shipped.plugins.find((p: { module: string }) => p.module === 'images');
  const plugins = config.plugins.filter((p: { module: string }) => p.module !== 'images');
  return { ...config, plugins: [...plugins, { ...entry, options: { ...entry.options, ...options } }] };
}
