import { defineConfig } from 'tsup';
import { baseTsup } from '../../tsup.config.base';

// Two entries: the browser-safe main entry and `@sbm/mnist-eval/node` (reads the shipped weights file).
// shims: the CommonJS build of the Node entry needs import.meta.url to find weights/ next to dist/.
export default defineConfig({ ...baseTsup, entry: ['src/index.ts', 'src/node.ts'], shims: true });
