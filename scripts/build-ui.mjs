#!/usr/bin/env node
/**
 * Builds the web console (ui/; docs/ui.md) into dist/ui/: esbuild bundles
 * ui/main.tsx (Preact, TSX) and its CSS into content-hashed files under
 * dist/ui/assets/, code-split so a view's heavy parts (a terminal, a VNC
 * client) load only when that view opens; each asset is also written
 * gzipped (.gz) so the agent serves it compressed without compressing per
 * request. dist/ui/index.html names the hashed entry files, and
 * dist/ui/manifest.json lists every asset the agent may serve (nothing
 * else is ever read from disk for /ui). Types are checked by
 * `tsc -p ui/tsconfig.json` (npm run build runs both).
 *
 *   node scripts/build-ui.mjs
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/ui');
const assets = path.join(out, 'assets');

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: 'ui/main.tsx' },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  minify: true,
  legalComments: 'none',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: assets,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file', '.woff2': 'file' },
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = Object.entries(result.metafile.outputs);
const entry = outputs.find(([, o]) => o.entryPoint === 'ui/main.tsx');
if (!entry) throw new Error('build-ui: esbuild produced no entry output');
const name = (file) => path.basename(file);
const script = name(entry[0]);
const style = entry[1].cssBundle ? name(entry[1].cssBundle) : undefined;

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hyperkern</title>
<link rel="icon" href="data:,">
${style ? `<link rel="stylesheet" href="/ui/assets/${style}">\n` : ''}<script type="module" src="/ui/assets/${script}"></script>
</head>
<body>
<div id="app"><p class="boot">Loading the console…</p></div>
<noscript>The hyperkern console needs JavaScript; the API itself is documented at <a href="/docs">/docs</a>.</noscript>
</body>
</html>
`;
writeFileSync(path.join(out, 'index.html'), html);

const files = {};
for (const [file] of outputs) {
  const bytes = readFileSync(path.join(root, file));
  const gz = gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(path.join(root, `${file}.gz`), gz);
  files[name(file)] = { bytes: bytes.length, gzip: gz.length };
}
const initial = [script, ...(style ? [style] : []), ...entry[1].imports.filter((i) => i.kind === 'import-statement').map((i) => name(i.path))];
writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({ entry: script, style, initial: [...new Set(initial)], files }, null, 2));
const initialGzip = [...new Set(initial)].reduce((sum, f) => sum + files[f].gzip, 0);
console.log(`build-ui: ${Object.keys(files).length} assets, first load ${(initialGzip / 1024).toFixed(1)} KiB gzipped`);
