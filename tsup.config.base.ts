import type { Options } from 'tsup';

/**
 * SBM_QUICK_BUILD=1 (set by `npm start`): ESM only, no .d.ts and no source maps — what running the CLI needs, in a
 * fraction of the time (declaration bundling is most of a package's build). nx keys its cache on the variable, so
 * `npm run build` afterwards still produces (and caches) the full output.
 */
const quick = process.env.SBM_QUICK_BUILD === '1';

/** Shared tsup settings: ESM + CJS + .d.ts, tfjs and sibling packages kept external. */
export const baseTsup: Options = {
  entry: ['src/index.ts'],
  format: quick ? ['esm'] : ['esm', 'cjs'],
  dts: !quick,
  clean: true,
  sourcemap: !quick,
  target: 'es2022',
  external: [/^@tensorflow\//, /^@sbm\//, 'webgpu'],
};
