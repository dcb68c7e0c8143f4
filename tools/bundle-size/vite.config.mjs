import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// @sbm/* resolve to the TypeScript sources (as in vitest.config.ts), so the measurement needs no package build and
// always reflects the working tree.
const packages = fileURLToPath(new URL('../../packages/', import.meta.url));
const alias = readdirSync(packages)
  .filter((d) => existsSync(`${packages}${d}/src/index.ts`))
  .map((d) => ({ find: new RegExp(`^@sbm/${d}$`), replacement: `${packages}${d}/src/index.ts` }));

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  logLevel: 'warn',
  resolve: { alias },
  build: { target: 'es2022', minify: true, reportCompressedSize: false, emptyOutDir: true },
});
