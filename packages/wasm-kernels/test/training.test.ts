import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels } from '@sbm/wasm-kernels';
import { relError, seeded } from './helpers';

const TOL = 1e-4;
const B = 2;
const EMB = 8;

/** Parameter shapes of a miniature score network with every layer kind the sbm models use. */
const SHAPES: Record<string, number[]> = {
  fourierW: [EMB / 2], // Gaussian Fourier features (trainable here so their sin/cos gradients are checked too)
  embedW: [EMB, EMB],
  embedB: [EMB],
  classTable: [3, EMB], // class embedding looked up with gather → UnsortedSegmentSum in the backward pass
  conv1: [3, 3, 1, 4],
  dense1: [EMB, 4],
  gn1Scale: [4],
  gn1Shift: [4],
  conv2: [3, 3, 4, 8],
  gn2Scale: [8],
  gn2Shift: [8],
  wq: [8, 8],
  wk: [8, 8],
  wv: [8, 8],
  wo: [8, 8],
  dw: [3, 3, 8, 1],
  tconv2: [3, 3, 4, 8],
  tconv1: [3, 3, 1, 8],
};

function makeVariables(): Record<string, tf.Variable> {
  const vars: Record<string, tf.Variable> = {};
  Object.entries(SHAPES).forEach(([name, shape], i) => {
    const fanIn = shape.length > 1 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
    const v = seeded(shape, 100 + i).map((u) => u / Math.sqrt(fanIn));
    vars[name] = tf.tidy(() => tf.variable(tf.tensor(v, shape), true, `${name}_${Math.random()}`));
  });
  return vars;
}

/** GroupNorm written with tf ops: normalize each group of channels over (H, W, channels in group). */
function groupNorm(x: tf.Tensor4D, groups: number, scale: tf.Tensor, shift: tf.Tensor): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const g = x.reshape([b, h, w, groups, c / groups]);
  const { mean, variance } = tf.moments(g, [1, 2, 4], true);
  const n = g.sub(mean).div(variance.add(1e-5).sqrt()).reshape([b, h, w, c]);
  return n.mul(scale).add(shift) as tf.Tensor4D;
}

const swish = (x: tf.Tensor): tf.Tensor => x.mul(tf.sigmoid(x));

function loss(v: Record<string, tf.Variable>, x: tf.Tensor4D, t: tf.Tensor1D, labels: tf.Tensor1D, z: tf.Tensor4D) {
  // Fourier features of t, a dense layer, plus a class embedding.
  const proj = t
    .reshape([B, 1])
    .mul(v.fourierW.reshape([1, EMB / 2]))
    .mul(2 * Math.PI);
  const four = tf.concat([tf.sin(proj), tf.cos(proj)], 1);
  const emb = swish(four.matMul(v.embedW).add(v.embedB).add(tf.gather(v.classTable, labels)));
  // Encoder: 3×3 stride 1, then 3×3 stride 2, GroupNorm + swish.
  const h1c = tf.conv2d(x, v.conv1 as tf.Tensor4D, 1, 'valid'); // [B,6,6,4]
  const h1 = swish(groupNorm(h1c.add(emb.matMul(v.dense1).reshape([B, 1, 1, 4])), 2, v.gn1Scale, v.gn1Shift));
  const h2c = tf.conv2d(h1 as tf.Tensor4D, v.conv2 as tf.Tensor4D, 2, 'valid') as tf.Tensor4D; // [B,2,2,8]
  let h2 = swish(groupNorm(h2c, 4, v.gn2Scale, v.gn2Shift)) as tf.Tensor4D;
  // Self-attention over the 4 spatial tokens.
  const tokens = h2.reshape([B, 4, 8]);
  const q = tokens
    .reshape([B * 4, 8])
    .matMul(v.wq)
    .reshape([B, 4, 8]);
  const k = tokens
    .reshape([B * 4, 8])
    .matMul(v.wk)
    .reshape([B, 4, 8]);
  const val = tokens
    .reshape([B * 4, 8])
    .matMul(v.wv)
    .reshape([B, 4, 8]);
  const attn = tf.softmax(tf.matMul(q, k, false, true).div(Math.sqrt(8)));
  const mixed = tf
    .matMul(attn, val)
    .reshape([B * 4, 8])
    .matMul(v.wo)
    .reshape([B, 2, 2, 8]);
  h2 = h2.add(mixed) as tf.Tensor4D;
  h2 = h2.add(tf.depthwiseConv2d(h2, v.dw as tf.Tensor4D, 1, 'same')) as tf.Tensor4D;
  // Decoder: transposed convs (stride 2 with output padding, then stride 1) with a skip connection.
  const u2 = swish(tf.conv2dTranspose(h2, v.tconv2 as tf.Tensor4D, [B, 6, 6, 4], 2, 'valid'));
  const u1 = tf.conv2dTranspose(
    tf.concat([u2, h1], 3) as tf.Tensor4D,
    v.tconv1 as tf.Tensor4D,
    [B, 8, 8, 1],
    1,
    'valid',
  );
  // Denoising score matching with λ = σ²: mean over batch of Σ (s·σ + z)².
  const std = t.reshape([B, 1, 1, 1]).add(0.5);
  return u1.mul(std).add(z).square().sum([1, 2, 3]).mean() as tf.Scalar;
}

interface StepResult {
  loss: number;
  grads: Record<string, Float32Array>;
  updated: Record<string, Float32Array>;
  leaked: number;
}

async function trainingStep(backend: string): Promise<StepResult> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const vars = makeVariables();
  const x = tf.tensor4d(seeded([B, 8, 8, 1], 1), [B, 8, 8, 1]);
  const t = tf.tensor1d([0.3, 0.8]);
  const labels = tf.tensor1d([2, 2], 'int32');
  const z = tf.tensor4d(seeded([B, 8, 8, 1], 2), [B, 8, 8, 1]);
  const { value, grads } = tf.variableGrads(() => loss(vars, x, t, labels, z));
  const out: StepResult = { loss: value.dataSync()[0], grads: {}, updated: {}, leaked: 0 };
  for (const [name, g] of Object.entries(grads)) out.grads[name.split('_')[0]] = Float32Array.from(g.dataSync());
  const opt = tf.train.adam(1e-3);
  opt.applyGradients(grads as unknown as Parameters<typeof opt.applyGradients>[0]);
  for (const [name, v] of Object.entries(vars)) out.updated[name] = Float32Array.from(v.dataSync());
  opt.dispose();
  tf.dispose([value, x, t, labels, z, ...Object.values(grads), ...Object.values(vars)]);
  out.leaked = tf.memory().numTensors - before;
  return out;
}

describe('a full training step runs on wasm and matches cpu', () => {
  beforeAll(() => {
    registerWasmTrainingKernels();
  });

  it('loss, every gradient and the Adam update agree; no tensors leak', async () => {
    const ref = await trainingStep('cpu');
    const got = await trainingStep('wasm');
    expect(ref.leaked).toBe(0);
    expect(got.leaked).toBe(0);
    expect(Math.abs(got.loss - ref.loss) / Math.max(1, Math.abs(ref.loss))).toBeLessThan(TOL);
    expect(Object.keys(got.grads).sort()).toEqual(Object.keys(SHAPES).sort());
    for (const name of Object.keys(SHAPES)) {
      // Every gradient is non-trivial, so agreement is not 0 = 0.
      expect(Math.max(...Array.from(ref.grads[name]).map(Math.abs)), name).toBeGreaterThan(1e-6);
      expect(relError(got.grads[name], ref.grads[name]), `gradient of ${name}`).toBeLessThan(TOL);
      expect(relError(got.updated[name], ref.updated[name]), `Adam update of ${name}`).toBeLessThan(TOL);
    }
  });
});
