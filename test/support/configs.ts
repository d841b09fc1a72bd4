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
