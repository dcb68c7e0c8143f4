import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { MlpScoreModel, ScoreNet, type ScoreNetConfig } from '@sbm/models';
import { decodeSafetensors } from '@sbm/safetensors';
import { isSbmError } from '@sbm/core';
import { exportSafetensors, importSafetensors } from '@sbm/training';
import { snapshot } from './helpers';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Narrow channels keep the element-by-element checks fast (GroupNorm needs multiples of 32).
const SMALL: ScoreNetConfig = { name: 'scorenet', channels: [32, 32, 32, 32], embedDim: 32 };

const mlp = (seed: number) =>
  new MlpScoreModel(
    { name: 'mlp', inputDim: 3, hidden: [5, 4], embedding: { type: 'fourier', dim: 8, scale: 16 } },
    seed,
  );

describe('safetensors export / import', () => {
  it('round-trips every weight by name in the tfjs layout, with the model config in the metadata', () => {
    const a = mlp(1);
    const b = mlp(2);
    const before = tf.memory().numTensors;
    const bytes = exportSafetensors(a);
    importSafetensors(b, bytes);
    expect(tf.memory().numTensors).toBe(before);
    expect(snapshot(b.getWeights())).toEqual(snapshot(a.getWeights()));
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(Object.keys(tensors).sort()).toEqual(a.weightNames().sort());
    expect(JSON.parse(metadata['sbm.model'])).toEqual(a.toConfig());
    tf.dispose(Object.values(tensors));
    a.dispose();
    b.dispose();
  });

  it("torch layout: dense kernels become nn.Linear's [out, in] with y = W x", () => {
    const a = mlp(1);
    const { tensors } = decodeSafetensors(exportSafetensors(a, { layout: 'torch' }));
    const k = a.getWeights().find((w) => w.name === 'hidden.0/kernel')!.tensor; // [3, 5] tfjs [in, out]
    const W = tensors['hidden.0/kernel'];
    expect(W.shape).toEqual([5, 3]);
    const x = [0.3, -1.2, 2.0];
    const tfjsY = tf.tidy(() => tf.matMul(tf.tensor2d([x]), k as tf.Tensor2D).dataSync());
    const w = W.arraySync() as number[][];
    const torchY = w.map((row) => row.reduce((s, v, i) => s + v * x[i], 0));
    torchY.forEach((v, i) => expect(v).toBeCloseTo(tfjsY[i], 5));
    // Biases and the Fourier projection are unchanged.
    expect(tensors['hidden.0/bias'].shape).toEqual([5]);
    tf.dispose(Object.values(tensors));
    a.dispose();
  });

  it("torch layout: conv kernels become nn.Conv2d's [out, in, kh, kw] (cross-correlation), transposed-conv kernels [in, out, kh, kw], and import inverts it", () => {
    const net = new ScoreNet(SMALL, 4);
    const weights = net.getWeights();
    const bytes = exportSafetensors(net, { layout: 'torch' });
    const { tensors } = decodeSafetensors(bytes);
    const conv = weights.find((w) => w.tensor.rank === 4 && !w.name.startsWith('tconv'))!;
    const [kh, kw, cin, cout] = conv.tensor.shape;
    expect(tensors[conv.name].shape).toEqual([cout, cin, kh, kw]);
    // One output pixel of a valid conv on a random input, from the torch-layout weights by the definition of
    // nn.Conv2d: y[o] = Σ_{i,a,b} W[o, i, a, b] · x[a, b, i].
    const x = tf.randomNormal([1, kh, kw, cin], 0, 1, 'float32', 7);
    const y = tf.tidy(() => tf.conv2d(x as tf.Tensor4D, conv.tensor as tf.Tensor4D, 1, 'valid').dataSync());
    const xv = x.arraySync() as number[][][][];
    const Wt = tensors[conv.name].arraySync() as number[][][][];
    for (let o = 0; o < cout; o += Math.max(1, Math.floor(cout / 5))) {
      let s = 0;
      for (let i = 0; i < cin; i++)
        for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) s += Wt[o][i][a][b] * xv[0][a][b][i];
      expect(s).toBeCloseTo(y[o], 4);
    }
    const tconv = weights.find((w) => w.name.startsWith('tconv') && w.name.endsWith('/kernel'))!;
    const [th, tw, tout, tin] = tconv.tensor.shape;
    expect(tensors[tconv.name].shape).toEqual([tin, tout, th, tw]);
    const other = new ScoreNet(SMALL, 5);
    importSafetensors(other, bytes, { layout: 'torch' });
    expect(snapshot(other.getWeights())).toEqual(snapshot(weights));
    tf.dispose([x, ...Object.values(tensors)]);
    net.dispose();
    other.dispose();
  });

  it('rejects unknown names and missing weights, leaving the model unchanged', () => {
    const a = mlp(1);
    const b = mlp(2);
    const bBefore = snapshot(b.getWeights());
    const renamed = exportSafetensors(a, { rename: (n) => `net.${n}` });
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return isSbmError(e) ? e.code : 'other';
      }
      return 'no error';
    };
    expect(code(() => importSafetensors(b, renamed))).toBe('UNKNOWN_NAME');
    expect(snapshot(b.getWeights())).toEqual(bBefore);
    importSafetensors(b, renamed, { rename: (n) => `net.${n}` });
    expect(snapshot(b.getWeights())).toEqual(snapshot(a.getWeights()));
    expect(code(() => importSafetensors(b, new Uint8Array([1, 2, 3])))).toBe('CORRUPT_CHECKPOINT');
    a.dispose();
    b.dispose();
  });
});
