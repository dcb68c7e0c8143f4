import type { Options } from 'tsup';

/** Shared tsup settings: ESM + CJS + .d.ts, tfjs and sibling packages kept external. */
export const baseTsup: Options = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  external: [/^@tensorflow\//, /^@sbm\//, 'webgpu'],
};
