/**
 * Two rules of the owner's definition of done, enforced over the sources
 * of core/, plugins/ and cli/: no source file over 400 lines (one concept
 * per file), and no `any` (`: any`, `as any`, `<any>`, `any[]`), comments
 * aside. Read from the TypeScript sources.
 */
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../support/agent.js';

const FOLDERS = ['core', 'plugins', 'cli'];
const MAX_LINES = 400;
const ANY = /(?::\s*any\b|\bas\s+any\b|<any\b|\bany\s*\[\]|,\s*any\s*>)/;

async function sources(): Promise<string[]> {
  const out: string[] = [];
  for (const folder of FOLDERS) {
    for (const entry of await readdir(path.join(repoRoot, folder), { withFileTypes: true, recursive: true })) {
      if (entry.isFile() && entry.name.endsWith('.ts')) out.push(path.join(entry.parentPath, entry.name));
    }
  }
  return out;
}

/** The code without its comments (strings stay: a rule on code, not on prose). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

describe('source rules', () => {
  it(`no source file of ${FOLDERS.join(', ')} is over ${MAX_LINES} lines`, async () => {
    const offenders: string[] = [];
    for (const file of await sources()) {
      const lines = (await readFile(file, 'utf8')).split('\n').length - 1;
      if (lines > MAX_LINES) offenders.push(`${path.relative(repoRoot, file)}: ${lines} lines`);
    }
    expect(offenders, 'split these into files of one concept each').to.deep.equal([]);
  });

  it(`no source file of ${FOLDERS.join(', ')} uses any`, async () => {
    const offenders: string[] = [];
    for (const file of await sources()) {
      for (const [i, line] of withoutComments(await readFile(file, 'utf8')).split('\n').entries()) {
        if (ANY.test(line)) offenders.push(`${path.relative(repoRoot, file)}:${i + 1}: ${line.trim()}`);
      }
    }
    expect(offenders, 'type these (unknown, a named type, a generic)').to.deep.equal([]);
  });
});
