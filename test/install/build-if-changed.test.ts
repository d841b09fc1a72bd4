/**
 * `npm start` builds only when a source changed (scripts/build-if-changed.mjs):
 * the script, copied into a small project of its own with the real tsc,
 * builds once, then does nothing until a source is changed, added or
 * removed; a removed source's output goes too (a clean build).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { makeTempDir, removeDir, repoRoot } from '../support/agent.js';

const run = promisify(execFile);

describe('build-if-changed: npm start compiles only what changed', function () {
  // Three tsc runs of a two-file project on a loaded machine.
  this.timeout(120000);
  let project: string;

  before(async () => {
    project = await makeTempDir('hyperkern-build-stamp-');
    await mkdir(path.join(project, 'scripts'));
    await mkdir(path.join(project, 'core'));
    await copyFile(path.join(repoRoot, 'scripts/build-if-changed.mjs'), path.join(project, 'scripts/build-if-changed.mjs'));
    await symlink(path.join(repoRoot, 'node_modules'), path.join(project, 'node_modules'));
    await writeFile(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', outDir: 'dist', rootDir: '.', types: [] }, include: ['core/**/*.ts'] }),
    );
    await writeFile(path.join(project, 'core/a.ts'), 'export const a: number = 1;\n');
    await writeFile(path.join(project, 'core/b.ts'), 'export const b: number = 2;\n');
  });
  after(async () => {
    if (project) await removeDir(project);
  });

  const build = () => run(process.execPath, [path.join(project, 'scripts/build-if-changed.mjs')], { cwd: project });
  const needed = () => run(process.execPath, [path.join(project, 'scripts/build-if-changed.mjs'), '--check'], { cwd: project }).then(() => false, () => true);

  it('builds the first time, then not until a source changes; a removed source leaves no output behind', async () => {
    expect(await needed(), 'no stamp yet').to.equal(true);
    await build();
    expect(existsSync(path.join(project, 'dist/core/a.js'))).to.equal(true);
    expect(await needed(), 'just built').to.equal(false);
    // A second run with nothing changed compiles nothing: the output is left as it was.
    await rm(path.join(project, 'dist/core/a.js'));
    await build();
    expect(existsSync(path.join(project, 'dist/core/a.js')), 'nothing compiled').to.equal(false);

    // An edit (a newer mtime) builds again.
    const later = new Date(Date.now() + 5000);
    await utimes(path.join(project, 'core/a.ts'), later, later);
    expect(await needed()).to.equal(true);
    await build();
    expect(existsSync(path.join(project, 'dist/core/a.js'))).to.equal(true);

    // A removed source: a clean build, its output gone.
    await rm(path.join(project, 'core/b.ts'));
    expect(await needed()).to.equal(true);
    await build();
    expect(existsSync(path.join(project, 'dist/core/b.js')), 'stale output removed').to.equal(false);
    expect(existsSync(path.join(project, 'dist/core/a.js'))).to.equal(true);
    expect(await needed()).to.equal(false);
  });

  it('a compile error fails the start and writes no stamp', async () => {
    await writeFile(path.join(project, 'core/a.ts'), 'export const a: number = "not a number";\n');
    const failed = await build().then(() => false, () => true);
    expect(failed).to.equal(true);
    expect(await needed(), 'the next start tries again').to.equal(true);
  });
});
