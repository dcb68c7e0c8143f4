import { defineConfig } from 'tsup';

// The CLI is an executable, not a library: one ESM file with a shebang, no declarations. The @sbm packages,
// tfjs and the npm dependencies stay external (installed next to it as dependencies).
export default defineConfig({
  entry: { cli: 'src/bin.ts' },
  format: ['esm'],
  dts: false,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  banner: { js: '#!/usr/bin/env node' },
  external: [/^@tensorflow\//, /^@sbm\//, 'webgpu', 'commander', 'pureimage'],
});
