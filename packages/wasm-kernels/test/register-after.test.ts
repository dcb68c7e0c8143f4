import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect, it } from 'vitest';
import { registerWasmTrainingKernels } from '@sbm/wasm-kernels';
import { relError, seeded } from './helpers';

// Separate file (own process): registration after the wasm backend is initialized must work too.
it('registering after tf.setBackend("wasm") enables the gradients', async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  const x = tf.tensor4d(seeded([1, 5, 5, 2], 30), [1, 5, 5, 2]);
  const w = tf.tensor4d(seeded([3, 3, 2, 3], 31), [3, 3, 2, 3]);
  const f = (a: tf.Tensor, k: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, 1, 'valid').sum();
  expect(() => tf.grads(f)([x, w])).toThrow(/Conv2DBackpropFilter/);
  registerWasmTrainingKernels();
  const [, dw] = tf.grads(f)([x, w]);
  // Closed form: d/dw Σ conv = Σ over output positions of the input patch → dw[i,j,c,o] = Σ_{p,q} x[p+i, q+j, c].
  const xv = x.dataSync();
  const expected = new Float32Array(3 * 3 * 2 * 3);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      for (let c = 0; c < 2; c++) {
        let s = 0;
        for (let p = 0; p < 3; p++) for (let q = 0; q < 3; q++) s += xv[((p + i) * 5 + (q + j)) * 2 + c];
        for (let o = 0; o < 3; o++) expected[((i * 3 + j) * 2 + c) * 3 + o] = s;
      }
  expect(relError(dw.dataSync(), expected)).toBeLessThan(1e-5);
  const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, true, false).sum())([
    tf.ones([4, 2]),
    tf.ones([4, 3]),
  ]);
  expect(Array.from(da.dataSync())).toEqual(new Array(8).fill(3));
  expect(Array.from(db.dataSync())).toEqual(new Array(12).fill(2));
  tf.dispose([x, w, dw, da, db]);
});
