import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initWasm } from '@sbm/backend-node';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');

/** Reference results on the cpu backend (plain JS), compared with the 2-thread wasm results. */
function compute(): { mm: Float32Array; conv: Float32Array } {
  return tf.tidy(() => {
    const a = tf.randomNormal([64, 48], 0, 1, 'float32', 1);
    const b = tf.randomNormal([48, 40], 0, 1, 'float32', 2);
    const x = tf.randomNormal<tf.Rank.R4>([2, 9, 9, 5], 0, 1, 'float32', 3);
    const k = tf.randomNormal<tf.Rank.R4>([3, 3, 5, 7], 0, 1, 'float32', 4);
    return {
      mm: tf.matMul(a, b).dataSync() as Float32Array,
      conv: tf.conv2d(x, k, 1, 'same').dataSync() as Float32Array,
    };
  });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('wasm with two threads in Node', () => {
  it('computes with 2 threads and agrees with the cpu backend', async () => {
    await tf.setBackend('cpu');
    const ref = compute();
    const info = await initWasm({ threads: 2 });
    expect(tf.getBackend()).toBe('wasm');
    expect(info.threads).toBe(2);
    expect(info.notes).toEqual([]);
    const wasmPkg = await import('@tensorflow/tfjs-backend-wasm');
    expect(wasmPkg.getThreadsCount()).toBe(2);
    const got = compute();
    // Sums of 48 (matmul) and 45 (conv) products of N(0,1) values (|terms| ≲ 10): float32 reassociation by
    // XNNPACK's SIMD kernels moves results by a few ulps of ~10, far below 1e-4.
    expect(maxAbsDiff(got.mm, ref.mm)).toBeLessThan(1e-4);
    expect(maxAbsDiff(got.conv, ref.conv)).toBeLessThan(1e-4);
    await tf.setBackend('cpu');
  });

  it('a process that used 2 wasm threads exits on its own (workers are unref()ed)', async () => {
    // Bundle a tiny script that uses initWasm from the sources, then run it as a plain Node process.
    const { build } = await import('esbuild');
    const outDir = join(root, 'node_modules', '.cache', 'sbm-backend-node-test');
    mkdirSync(outDir, { recursive: true });
    const entry = join(outDir, 'entry.ts');
    writeFileSync(
      entry,
      [
        `import * as tf from '@tensorflow/tfjs';`,
        `import { initWasm } from ${JSON.stringify(join(root, 'packages/backend-node/src/wasm.ts'))};`,
        `const info = await initWasm({ threads: 2 });`,
        `const s = tf.sum(tf.matMul(tf.ones([256, 256]), tf.ones([256, 256]))).dataSync()[0];`,
        `console.log(JSON.stringify({ threads: info.threads, backend: tf.getBackend(), s }));`,
      ].join('\n'),
    );
    const outfile = join(outDir, 'entry.mjs');
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      logLevel: 'silent',
      external: ['@tensorflow/*'],
      alias: {
        '@sbm/core': join(root, 'packages/core/src/index.ts'),
        '@sbm/wasm-kernels': join(root, 'packages/wasm-kernels/src/index.ts'),
      },
    });
    const run = spawnSync(process.execPath, [outfile], { encoding: 'utf8', timeout: 60_000 });
    // Killed by the timeout ⇒ status null and signal SIGTERM: the workers kept the process alive.
    expect(run.signal).toBeNull();
    expect(run.status).toBe(0);
    const last = run.stdout.trim().split('\n').pop()!;
    expect(JSON.parse(last)).toEqual({ threads: 2, backend: 'wasm', s: 256 * 256 * 256 });
  });
});
