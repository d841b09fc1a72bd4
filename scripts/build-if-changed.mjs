#!/usr/bin/env node
/**
 * `npm start` and `npm test` build first, but only when a source changed:
 * tsc takes 10-30 s here, the check below ~50 ms. The stamp
 * (dist/.build-stamp.json) lists every input of the last good build with
 * its size and mtime; any file added, changed or removed since means a
 * build, and a removed or renamed one means a clean build (tsc never
 * deletes the output of a source that is gone, and mocha would run a stale
 * test). `npm install` builds through the `prepare` script, so the first
 * start is quick too.
 *
 *   node scripts/build-if-changed.mjs           build if needed
 *   node scripts/build-if-changed.mjs --check   exit 1 if a build is needed, build nothing
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const stampFile = path.join(dist, '.build-stamp.json');
/**
 * tsconfig.json's "include" folders (TypeScript sources), the web console's
 * (ui/, bundled by scripts/build-ui.mjs; it imports core/contract too) and
 * the files that change what the builds emit.
 */
const SOURCE_DIRS = ['core', 'plugins', 'cli', 'test', 'bench', 'ui'];
const CONFIG_FILES = ['tsconfig.json', 'ui/tsconfig.json', 'scripts/build-ui.mjs', 'package-lock.json'];
/** What the console's build reads besides TypeScript. */
const SOURCE_EXTENSIONS = ['.ts', '.tsx', '.css'];

function inputs() {
  const files = {};
  const note = (file) => {
    const s = statSync(file);
    files[path.relative(root, file)] = `${s.size}:${s.mtimeMs}`;
  };
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(file);
      } else if (SOURCE_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) note(file);
    }
  };
  for (const dir of SOURCE_DIRS) if (existsSync(path.join(root, dir))) walk(path.join(root, dir));
  for (const file of CONFIG_FILES) if (existsSync(path.join(root, file))) note(path.join(root, file));
  return files;
}

function lastBuild() {
  try {
    return JSON.parse(readFileSync(stampFile, 'utf8')).files ?? {};
  } catch {
    return undefined;
  }
}

const now = inputs();
const last = lastBuild();
const changed = last === undefined ? ['(no stamp)'] : Object.keys(now).filter((file) => now[file] !== last[file]);
const removed = last === undefined ? [] : Object.keys(last).filter((file) => !(file in now));
if (changed.length === 0 && removed.length === 0) process.exit(0);
if (process.argv.includes('--check')) {
  console.error(`build needed: ${[...changed, ...removed].slice(0, 5).join(', ')}${changed.length + removed.length > 5 ? ', …' : ''}`);
  process.exit(1);
}
if (removed.length > 0 || last === undefined) rmSync(dist, { recursive: true, force: true });
// The same steps as `npm run build`: the server (tsc), then, where the
// console's sources are (a checkout), its types and its bundle.
const tscBin = path.join(root, 'node_modules/typescript/bin/tsc');
const steps = [[tscBin, '-p', path.join(root, 'tsconfig.json')]];
if (existsSync(path.join(root, 'ui/tsconfig.json'))) steps.push([tscBin, '-p', path.join(root, 'ui/tsconfig.json')], [path.join(root, 'scripts/build-ui.mjs')]);
for (const args of steps) {
  const step = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (step.status !== 0) process.exit(step.status ?? 1);
}
// The stamp holds what was read before tsc ran: a file saved during the build builds again next time.
writeFileSync(stampFile, JSON.stringify({ files: now }));
