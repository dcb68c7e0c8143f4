import { defineConfig } from 'tsup';
import { baseTsup } from '../../tsup.config.base';

// shims: the CommonJS build needs import.meta.url (used with createRequire to find tfjs-backend-wasm's files).
export default defineConfig({ ...baseTsup, shims: true });
