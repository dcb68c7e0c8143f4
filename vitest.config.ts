import { defineConfig } from 'vitest/config';
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Tests run against the TypeScript sources: every `@sbm/<name>` import resolves to packages/<name>/src.
const root = fileURLToPath(new URL('.', import.meta.url));
// Subpath entries (`@sbm/datasets/node` → src/node.ts, `@sbm/sde/testing` → src/testing.ts) are matched exactly, before the bare package name.
const alias: { find: RegExp; replacement: string }[] = [];
for (const dir of readdirSync(`${root}packages`)) {
  const entry = `${root}packages/${dir}/src/index.ts`;
  if (!existsSync(entry)) continue;
  for (const sub of ['node', 'testing']) {
    const subEntry = `${root}packages/${dir}/src/${sub}.ts`;
    if (existsSync(subEntry)) alias.push({ find: new RegExp(`^@sbm/${dir}/${sub}$`), replacement: subEntry });
  }
  alias.push({ find: new RegExp(`^@sbm/${dir}$`), replacement: entry });
}

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'tools/*/test/**/*.test.ts'],
    // `*.webgpu.test.ts` run on Node WebGPU only, through `npm run test:webgpu` (SBM_TEST_WEBGPU=1).
    exclude:
      process.env.SBM_TEST_WEBGPU === '1' ? ['**/node_modules/**'] : ['**/node_modules/**', '**/*.webgpu.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores here and in CI: run two test files at once (vitest's default leaves one core idle).
    maxWorkers: 2,
    reporters: ['default'],
  },
});
