/**
 * The dependency rule, enforced: core never imports a plugin, and a plugin
 * reaches the kernel only through core/contract (so the contract is the
 * whole plugin API); the CLI, a client, sees only the contract's wire
 * types. Read from the TypeScript sources.
 */
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../support/agent.js';

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

/** Every relative module a file imports (static, dynamic, re-exports), resolved to a repo path. */
async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specifiers.map((s) => path.relative(repoRoot, path.resolve(path.dirname(file), s)));
}

describe('import rules', () => {
  it('core imports no plugin', async () => {
    const offenders: string[] = [];
    for (const file of await sources(path.join(repoRoot, 'core'))) {
      for (const target of await importsOf(file)) if (target.startsWith('plugins/')) offenders.push(`${path.relative(repoRoot, file)} -> ${target}`);
    }
    expect(offenders).to.deep.equal([]);
  });

  it('the contract imports nothing else of the kernel (so plugins get nothing more through it)', async () => {
    const offenders: string[] = [];
    for (const file of await sources(path.join(repoRoot, 'core/contract'))) {
      for (const target of await importsOf(file)) if (!target.startsWith('core/contract/')) offenders.push(`${path.relative(repoRoot, file)} -> ${target}`);
    }
    expect(offenders).to.deep.equal([]);
  });

  it('the CLI, a client of the API, takes the kernel\'s wire types from core/contract and nothing else of core', async () => {
    const files = await sources(path.join(repoRoot, 'cli'));
    expect(files.length).to.be.greaterThan(3);
    const offenders: string[] = [];
    for (const file of files) {
      const own = path.relative(repoRoot, file);
      for (const target of await importsOf(file)) {
        // `hyperkern serve` is the agent itself: it hands the process to core/main.
        const servesTheAgent = own === 'cli/serve.ts' && target === 'core/main.js';
        if (target.startsWith('core/') && !target.startsWith('core/contract/') && !servesTheAgent) offenders.push(`${own} -> ${target}`);
      }
    }
    expect(offenders).to.deep.equal([]);
  });

  it('plugins import the kernel only through core/contract', async () => {
    const files = await sources(path.join(repoRoot, 'plugins'));
    expect(files.length).to.be.greaterThan(10);
    const offenders: string[] = [];
    for (const file of files) {
      const own = path.relative(repoRoot, file).split(path.sep).slice(0, 2).join('/');
      for (const target of await importsOf(file)) {
        if (target.startsWith('core/') && !target.startsWith('core/contract/')) offenders.push(`${path.relative(repoRoot, file)} -> ${target}`);
        // A plugin uses another plugin through dependsOn, never by importing it.
        if (target.startsWith('plugins/') && !target.startsWith(`${own}/`)) offenders.push(`${path.relative(repoRoot, file)} -> ${target}`);
      }
    }
    expect(offenders).to.deep.equal([]);
  });
});
