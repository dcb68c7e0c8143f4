import * as tf from '@tensorflow/tfjs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isSbmError } from '@sbm/core';
import { checkpointUrl, initBackend, toImageData, type ModuleLoader } from '@sbm/backend-browser';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const missing: ModuleLoader = async (s) => {
  throw new Error(`Cannot find module '${s}'`);
};

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('backend-browser without a browser', () => {
  it('bundles for the browser platform: no Node built-ins anywhere in the package or its sbm dependencies', async () => {
    const { build } = await import('esbuild');
    // platform 'browser' makes esbuild fail on any node:* / fs / path import; tfjs is left out (its own business).
    const result = await build({
      entryPoints: [join(root, 'packages/backend-browser/src/index.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
      external: ['@tensorflow/*'],
      alias: {
        '@sbm/core': join(root, 'packages/core/src/index.ts'),
        '@sbm/wasm-kernels': join(root, 'packages/wasm-kernels/src/index.ts'),
      },
    });
    expect(result.errors).toEqual([]);
    expect(result.outputFiles[0].text).not.toMatch(/from\s+["']node:/);
  });

  it('automatic selection outside a browser: no WebGPU, no WebGL, wasm missing → cpu, reasons in one line', async () => {
    const lines: string[] = [];
    const b = await initBackend({ loader: missing, log: (l) => lines.push(l) });
    expect(b.name).toBe('cpu');
    expect(b.kind).toBe('browser');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('webgpu: this browser has no WebGPU (navigator.gpu is missing)');
    // tfjs's Node bundle has no webgl backend at all; a DOM-less browser-like runtime would have no context.
    expect(lines[0]).toMatch(/webgl: (tfjs has no webgl backend in this build|WebGL is not available)/);
    expect(lines[0]).toContain(
      'wasm: @tensorflow/tfjs-backend-wasm is not installed (npm install @tensorflow/tfjs-backend-wasm)',
    );
  });

  it('an explicitly requested backend that cannot start is BACKEND_UNAVAILABLE; unknown names are UNKNOWN_NAME', async () => {
    const e1 = await initBackend({ backend: 'webgpu', loader: missing, log: false }).catch((e: unknown) => e);
    expect(isSbmError(e1, 'BACKEND_UNAVAILABLE')).toBe(true);
    const e2 = await initBackend({ backend: 'tensorflow' as 'cpu', log: false }).catch((e: unknown) => e);
    expect(isSbmError(e2, 'UNKNOWN_NAME')).toBe(true);
    expect((e2 as Error).message).toBe(
      'backend: expected one of "webgpu", "webgl", "wasm", "cpu", "auto", got "tensorflow"',
    );
  });

  it('checkpoint locations: bare names go to IndexedDB, tf.io browser schemes are kept, others rejected', () => {
    expect(checkpointUrl('ncsn')).toBe('indexeddb://ncsn');
    expect(checkpointUrl('downloads://ncsn')).toBe('downloads://ncsn');
    expect(checkpointUrl('localstorage://m')).toBe('localstorage://m');
    expect(() => checkpointUrl('file:///tmp/x')).toThrowError(
      /expected indexeddb:\/\/, localstorage:\/\/ or downloads:\/\//,
    );
    expect(() => checkpointUrl('')).toThrowError(/location: expected a name/);
  });

  it.skipIf(typeof ImageData === 'undefined')('toImageData expands gray to opaque RGBA (needs ImageData)', () => {
    const d = toImageData(Uint8Array.from([10, 20]), 2, 1, 1);
    expect(Array.from(d.data)).toEqual([10, 10, 10, 255, 20, 20, 20, 255]);
  });

  it('toImageData rejects a pixel buffer of the wrong size before touching ImageData', () => {
    expect(() => toImageData(Uint8Array.from([1, 2, 3]), 2, 1, 1)).toThrowError(/expected 2×1×1 = 2 bytes, got 3/);
  });
});
