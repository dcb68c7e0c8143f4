import { defineConfig } from 'tsup';
import { baseTsup } from '../../tsup.config.base';

// Two entries: the package and `@sbm/samplers/testing` (the conformance suite; it imports `@sbm/samplers`' own
// modules and the oracle packages, which stay external).
export default defineConfig({ ...baseTsup, entry: ['src/index.ts', 'src/testing.ts'] });
