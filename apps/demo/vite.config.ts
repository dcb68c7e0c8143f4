import { defineConfig } from 'vite';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const packages = fileURLToPath(new URL('../../packages/', import.meta.url));

/*
 * `@sbm/<name>` resolves to packages/<name>/src, as in the root vitest.config.ts: the site is built from the sources,
 * so `npm run demo` needs no prior build of the packages. Subpath entries (`@sbm/datasets/node`) are matched first.
 */
const alias: { find: RegExp; replacement: string }[] = [];
for (const dir of readdirSync(packages)) {
  const entry = `${packages}${dir}/src/index.ts`;
  if (!existsSync(entry)) continue;
  for (const sub of ['node', 'testing']) {
    const subEntry = `${packages}${dir}/src/${sub}.ts`;
    if (existsSync(subEntry)) alias.push({ find: new RegExp(`^@sbm/${dir}/${sub}$`), replacement: subEntry });
  }
  alias.push({ find: new RegExp(`^@sbm/${dir}$`), replacement: entry });
}

/*
 * Cross-origin isolation: SharedArrayBuffer, and with it tfjs-backend-wasm's threaded build, exists only on pages
 * served with COOP same-origin + COEP require-corp (https://web.dev/articles/coop-coep). Everything the site loads is
 * its own origin, so require-corp costs nothing.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: here,
  // Relative asset URLs: the built site works from any folder (a static server, a sub-path).
  base: './',
  resolve: { alias },
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS },
  worker: {
    format: 'es',
    /*
     * tfjs-backend-wasm's threaded build hands its pthread workers the factory's own source
     * (`wasmFactoryThreadedSimd.toString()`, a Blob), where the bundle's outer scope is gone. Its guard
     * `typeof _scriptDir !== "undefined" && _scriptDir` keeps that source valid, but the compressor drops the typeof
     * (it sees `_scriptDir` declared) and every thread then dies with a ReferenceError (tfjs issue #4539: the module
     * is safe to mangle, not to compress). So the worker bundle is mangled only: +10 % size, threads work.
     */
    rolldownOptions: { output: { minify: { mangle: true, compress: false } } },
  },
  // The wasm backend's .wasm files are imported with `?url` (src/worker.ts): pre-bundling would hide them.
  optimizeDeps: { exclude: ['@tensorflow/tfjs-backend-wasm'] },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    // tfjs alone is ~1.5 MB minified: the default 500 kB warning would fire on every build.
    chunkSizeWarningLimit: 4096,
    // The .wasm files are emitted as files (never inlined as data: URLs) so the browser compiles them streaming.
    assetsInlineLimit: 0,
  },
});
