import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { availableBackends, backendAvailability, describeWithBackends } from '@sbm/test-harness';

describe('availableBackends', () => {
  it('always includes cpu and wasm; optional ones carry a reason', () => {
    const a = availableBackends();
    expect(a.slice(0, 2)).toEqual(['cpu', 'wasm']);
    const why = backendAvailability();
    expect(why.webgpu.available).toBe(a.includes('webgpu'));
    if (process.env.SBM_TEST_WEBGPU !== '1') expect(why.webgpu.reason).toContain('SBM_TEST_WEBGPU=1');
    expect(why.tensorflow.available).toBe(a.includes('tensorflow'));
  });
});

describeWithBackends('describeWithBackends', ({ backend }) => {
  it('activates the named backend for the suite', () => {
    expect(tf.getBackend()).toBe(backend);
  });

  it('computes a matmul that matches the closed form', async () => {
    // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]
    const before = tf.memory().numTensors;
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
    // await data(): the only read that works on every backend (Node WebGPU has no synchronous readback).
    expect(Array.from(await y.data())).toEqual([19, 22, 43, 50]);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it.skipIf(backend !== 'webgpu')('webgpu: dataSync says to use await data() instead of failing obscurely', () => {
    // A result computed on the GPU (values that start on the CPU, like tf.ones, read synchronously).
    const y = tf.tidy(() => tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])));
    expect(() => y.dataSync()).toThrowError(/use await tensor.data\(\)/);
    y.dispose();
  });

  it.skipIf(backend !== 'wasm')('wasm has sbm training kernels registered (Conv2DBackpropFilter)', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });
});
