// `npm run bench -- bundle [--out DIR]`: builds the minimal browser app in tools/bundle-size (backend-browser's
// initBackend + samplers' PC sampler on a 2-D Gaussian) with Vite in production mode and reports the JavaScript it
// ships: raw and gzip bytes of what the page loads up front (entry + preloaded chunks) and of all chunks (the lazy
// ones — wasm / webgpu backends — included).
// No package build needed: the app's vite.config resolves @sbm/* to the sources.
import { readdirSync, readFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { parseArgs } from '../lib/timing.mjs';

const appDir = fileURLToPath(new URL('../../bundle-size/', import.meta.url));

function walk(dir) {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
}

export async function run({ args, emit, log }) {
  const opts = parseArgs(args);
  const outDir = typeof opts.out === 'string' ? opts.out : mkdtempSync(join(tmpdir(), 'sbm-bundle-'));
  const { build, version } = await import('vite');
  log(`vite ${version}: building ${appDir} into ${outDir}`);
  const t0 = Date.now();
  await build({ configFile: join(appDir, 'vite.config.mjs'), build: { outDir } });
  const html = readFileSync(join(outDir, 'index.html'), 'utf8');
  // What the page loads before main.ts runs: the entry script and the chunks Vite preloads for it.
  const initialNames = [...html.matchAll(/(?:src|href)="\/?([^"]+\.js)"/g)].map((m) => m[1]);
  const chunks = walk(outDir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => {
      const bytes = readFileSync(f);
      return { file: f.slice(outDir.length + 1), raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
    });
  const initial = chunks.filter((c) => initialNames.includes(c.file));
  const sum = (k, list = chunks) => list.reduce((s, c) => s + c[k], 0);
  emit({
    app: 'tools/bundle-size',
    vite: version,
    initialRawBytes: sum('raw', initial),
    initialGzipBytes: sum('gzip', initial),
    initialChunks: initial.length,
    totalRawBytes: sum('raw'),
    totalGzipBytes: sum('gzip'),
    chunks: chunks.length,
    buildMs: Date.now() - t0,
  });
  if (typeof opts.out !== 'string') rmSync(outDir, { recursive: true, force: true });
}
