import { defineConfig } from 'tsup';
import { baseTsup } from '../../tsup.config.base';

// Two entries: the package and `@sbm/sde/testing` (the conformance suite; it imports `@sbm/sde`, kept external, so
// it checks the very classes an app uses).
export default defineConfig({ ...baseTsup, entry: ['src/index.ts', 'src/testing.ts'] });
