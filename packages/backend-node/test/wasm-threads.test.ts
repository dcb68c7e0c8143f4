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

  it("@sbm/wasm-kernels' SIMD passes split over 2 threads give the 1-thread bits", async () => {
    const { _internals, registerWasmTrainingKernels } = await import('@sbm/wasm-kernels');
    await initWasm({ threads: 2 });
    registerWasmTrainingKernels();
    const backend = tf.backend() as unknown as Parameters<typeof _internals.simdThreads>[0];
    expect(_internals.simdThreads(backend)).toBe(2);
    // Every split kernel at sizes above the split threshold (2^16 values a call): group norm + swish forward and gradients (with a
    // bias), the few-channel filter gradient, im2col (a stride-2 filter gradient), col2im (a stride-2 input
    // gradient), Concat and SplitV.
    const run = () =>
      tf.tidy(() => {
        const x = tf.randomNormal<tf.Rank.R4>([8, 24, 24, 24], 0.5, 2, 'float32', 1);
        const gamma = tf.randomNormal([24], 1, 0.3, 'float32', 2);
        const beta = tf.randomNormal([24], 0, 0.3, 'float32', 3);
        const bias = tf.randomNormal([8, 24], 0, 1, 'float32', 4);
        const r = tf.randomNormal([8, 24, 24, 24], 0, 1, 'float32', 5);
        const attrs = { groups: 4, eps: 1e-5, activation: 'swish' };
        const y = tf.engine().runKernel('SbmGroupNorm', { x, gamma, beta, bias }, attrs) as tf.Tensor;
        const grads = tf.engine().runKernel('SbmGroupNormGrad', { dy: r, x, gamma, beta, bias }, attrs) as tf.Tensor[];
        const img = tf.randomNormal<tf.Rank.R4>([8, 28, 28, 1], 0, 1, 'float32', 6);
        const [, dw1] = tf.grads((a: tf.Tensor, f: tf.Tensor) =>
          tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid'))),
        )([img, tf.randomNormal([3, 3, 1, 16], 0, 1, 'float32', 7)]);
        const [dx2, dw2] = tf.grads((a: tf.Tensor, f: tf.Tensor) =>
          tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, 2, 'valid'))),
        )([x, tf.randomNormal([3, 3, 24, 16], 0, 1, 'float32', 8)]);
        const cat = tf.concat([x, r], 3);
        const [s1, s2] = tf.split(cat, [20, 28], 3);
        return [y, ...grads, dw1, dx2, dw2, cat, s1, s2];
      });
    const bits = async (ts: tf.Tensor[]) => {
      const out = await Promise.all(
        ts.map(async (t) => Array.from(new Uint32Array(((await t.data()) as Float32Array).buffer))),
      );
      tf.dispose(ts);
      return out;
    };
    const two = await bits(run());
    const old = _internals.setPoolEnabled(false);
    let one: number[][];
    try {
      expect(_internals.simdThreads(backend)).toBe(1);
      one = await bits(run());
    } finally {
      _internals.setPoolEnabled(old);
    }
    expect(two.length).toBe(one.length);
    two.forEach((t, i) => expect(t, `output ${i}`).toEqual(one[i]));
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
        `import { _internals } from '@sbm/wasm-kernels';`,
        `const info = await initWasm({ threads: 2 });`,
        `const s = tf.sum(tf.matMul(tf.ones([256, 256]), tf.ones([256, 256]))).dataSync()[0];`,
        // A group norm big enough to be split between the calling thread and @sbm/wasm-kernels' worker.
        `const x = tf.ones([4, 32, 32, 32]);`,
        `const g = tf.engine().runKernel('SbmGroupNorm', { x, gamma: tf.ones([32]), beta: tf.zeros([32]) }, { groups: 4, eps: 1e-5 });`,
        `const gs = tf.sum(g).dataSync()[0];`,
        `console.log(JSON.stringify({ threads: info.threads, backend: tf.getBackend(), s, gs, simdThreads: _internals.simdThreads(tf.backend()) }));`,
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
    // (a constant input normalises to 0 everywhere)
    expect(JSON.parse(last)).toEqual({ threads: 2, backend: 'wasm', s: 256 * 256 * 256, gs: 0, simdThreads: 2 });
  });
});
