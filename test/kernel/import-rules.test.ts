/**
 * The dependency rule, enforced: core never imports a plugin, a plugin
 * reaches the kernel only through core/contract (so the contract is the
 * whole plugin API); the CLI, a client, sees only the contract's wire
 * types; and each part of core imports only what the folder table in
 * docs/design.md says it may, as its header comment says too. Read from
 * the TypeScript sources.
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

/** One row of docs/design.md's folder table: a folder (`core/jobs/`) or root files, and what they may import. */
interface Rule {
  /** Repo paths the row covers: a folder ending in "/" or a file. */
  paths: string[];
  /** Parts of core it may import (a folder name, or a root file's name without .ts); undefined: all of core. */
  mayImport: Set<string> | undefined;
}

/** "contract, jobs (action names), errors" -> {contract, jobs, errors}; "—" or "nothing …" -> {}. */
function partsOf(cell: string): Set<string> | undefined {
  const text = cell.replace(/\([^)]*\)/g, '').trim();
  if (text === 'all of core') return undefined;
  if (text === '—' || text.startsWith('nothing')) return new Set();
  return new Set(text.split(',').map((entry) => entry.trim().split(/\s+/)[0]));
}

async function folderTable(): Promise<Rule[]> {
  const design = await readFile(path.join(repoRoot, 'docs/design.md'), 'utf8');
  const rows = design.split('\n').filter((line) => /^\| `(core\/|[a-z-]+\.ts)/.test(line));
  return rows.map((row) => {
    const [first, , may] = row.split('|').slice(1);
    const paths = [...first.matchAll(/`([^`]+)`/g)].map((m) => (m[1].endsWith('/') ? m[1] : `core/${m[1]}`));
    return { paths, mayImport: partsOf(may) };
  });
}

/** The table row for a repo path: the longest folder (or the file) that covers it. */
function ruleFor(rules: Rule[], file: string): { rule: Rule; own: string } | undefined {
  let best: { rule: Rule; own: string } | undefined;
  for (const rule of rules) {
    for (const p of rule.paths) {
      if ((p.endsWith('/') ? file.startsWith(p) : file === p) && p.length > (best?.own.length ?? 0)) best = { rule, own: p };
    }
  }
  return best;
}

/** The part of core a repo path belongs to: "jobs" for core/jobs/x.js, "errors" for core/errors.js. */
function partOf(target: string): string {
  const [, first] = target.split('/');
  return first.replace(/\.(js|ts)$/, '');
}

describe('the folder table of docs/design.md', () => {
  it('covers every file of core', async () => {
    const rules = await folderTable();
    expect(rules.length).to.be.greaterThan(10);
    const uncovered = (await sources(path.join(repoRoot, 'core'))).map((f) => path.relative(repoRoot, f)).filter((f) => !ruleFor(rules, f));
    expect(uncovered).to.deep.equal([]);
  });

  it('holds: each part of core imports only what its row says it may', async () => {
    const rules = await folderTable();
    const offenders: string[] = [];
    for (const file of await sources(path.join(repoRoot, 'core'))) {
      const relative = path.relative(repoRoot, file);
      const { rule, own } = ruleFor(rules, relative)!;
      if (!rule.mayImport) continue;
      for (const target of await importsOf(file)) {
        if (!target.startsWith('core/') || (own.endsWith('/') && target.startsWith(own))) continue;
        if (!rule.mayImport.has(partOf(target))) offenders.push(`${relative} -> ${target} (${own} may import: ${[...rule.mayImport].join(', ') || 'nothing'})`);
      }
    }
    expect(offenders).to.deep.equal([]);
  });

  it("is what each folder's header comment says it owns and may import", async () => {
    const rules = await folderTable();
    const mismatches: string[] = [];
    for (const rule of rules) {
      for (const folder of rule.paths.filter((p) => p.endsWith('/'))) {
        const entries = await readdir(path.join(repoRoot, folder));
        const headers: { file: string; mayImport: Set<string> | undefined }[] = [];
        for (const name of entries.filter((n) => n.endsWith('.ts'))) {
          const text = (await readFile(path.join(repoRoot, folder, name), 'utf8')).replace(/^#!.*\n/, '');
          const comment = /^\/\*\*\n([\s\S]*?)\*\//.exec(text)?.[1].replace(/^ \* ?/gm, '').replace(/\s+/g, ' ') ?? '';
          if (!comment.startsWith(`${folder.slice(0, -1)}: `)) continue;
          const may = /May import: ([^.]+)\./.exec(comment)?.[1];
          headers.push({ file: name, mayImport: may === undefined ? new Set(['(none stated)']) : partsOf(may) });
        }
        if (headers.length !== 1) {
          mismatches.push(`${folder}: ${headers.length} files open with "${folder.slice(0, -1)}: …" (want one: the folder's header)`);
          continue;
        }
        const said = [...(headers[0].mayImport ?? ['all of core'])].sort();
        const table = [...(rule.mayImport ?? ['all of core'])].sort();
        if (said.join() !== table.join()) mismatches.push(`${folder}${headers[0].file} says ${said.join(', ') || 'nothing'}; the table says ${table.join(', ') || 'nothing'}`);
      }
    }
    expect(mismatches).to.deep.equal([]);
  });
});
