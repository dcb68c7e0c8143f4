import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import {
  ScoreSdeNcsnpp,
  firDownsample2d,
  firUpsample2d,
  modelFromConfig,
  setupFirKernel,
  upfirdn2d,
  upsampleConv2d,
  type ScoreSdeNcsnppConfig,
} from '@sbm/models';
import { maxAbsDiff } from './helpers';

/** Single-channel upfirdn2d by its definition (StyleGAN2's upfirdn_2d reference): zero-insert, pad, convolve, keep. */
function naiveUpfirdn(x: number[][], k: number[][], up: number, down: number, p0: number, p1: number): number[][] {
  const H = x.length * up + p0 + p1;
  const W = x[0].length * up + p0 + p1;
  const at = (i: number, j: number) => {
    const a = i - p0;
    const b = j - p0;
    if (a < 0 || b < 0 || a % up !== 0 || b % up !== 0 || a / up >= x.length || b / up >= x[0].length) return 0;
    return x[a / up][b / up];
  };
  const kh = k.length;
  const out: number[][] = [];
  for (let i = 0; i + kh <= H; i += down) {
    const row: number[] = [];
    for (let j = 0; j + kh <= W; j += down) {
      let s = 0;
      for (let a = 0; a < kh; a++) for (let b = 0; b < kh; b++) s += at(i + a, j + b) * k[kh - 1 - a][kh - 1 - b];
      row.push(s);
    }
    out.push(row);
  }
  return out;
}

const grid = (h: number, w: number, f: (i: number, j: number) => number) =>
  Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => f(i, j)));

const TINY: ScoreSdeNcsnppConfig = {
  name: 'score-sde-ncsnpp',
  imageSize: 8,
  numChannels: 2,
  nf: 8,
  chMult: [1, 2],
  numResBlocks: 1,
  attnResolutions: [4],
};
const SWITCHES: [string, Partial<ScoreSdeNcsnppConfig>][] = [
  [
    'BigGAN, FIR, output_skip + input_skip, cat',
    { progressive: 'output_skip', progressiveInput: 'input_skip', progressiveCombine: 'cat' },
  ],
  [
    'DDPM blocks, FIR up/down convs, residual pyramids',
    { resblockType: 'ddpm', progressive: 'residual', progressiveInput: 'residual' },
  ],
  [
    'DDPM blocks, no FIR, conv resampling, unconditional, positional ÷σ, centered',
    {
      resblockType: 'ddpm',
      fir: false,
      conditional: false,
      embeddingType: 'positional',
      scaleBySigma: true,
      centered: true,
    },
  ],
  [
    'DDPM blocks, no FIR, no resampling conv, output_skip + input_skip, sum',
    {
      resblockType: 'ddpm',
      fir: false,
      resampWithConv: false,
      progressive: 'output_skip',
      progressiveInput: 'input_skip',
    },
  ],
];

describeWithBackends(
  'ScoreSdeNcsnpp and FIR resampling',
  () => {
    it('upfirdn2d equals its definition (asymmetric kernel, up, down, uneven pads)', async () => {
      const x = grid(5, 5, (i, j) => Math.sin(i * 1.3 + j * 0.7));
      const k = { values: [1, 2, 0, -1, 3, 1, 0.5, 2, 1], size: 3 };
      const k2 = grid(3, 3, (i, j) => k.values[3 * i + j]);
      const xt = tf.tensor4d(x.flat(), [1, 5, 5, 1]);
      for (const [up, down, p0, p1] of [
        [2, 1, 2, 1],
        [1, 2, 1, 2],
        [2, 2, 0, 3],
      ]) {
        const y = upfirdn2d(xt, k, { up, down, pad: [p0, p1] });
        const want = naiveUpfirdn(x, k2, up, down, p0, p1);
        expect(y.shape).toEqual([1, want.length, want[0].length, 1]);
        expect(maxAbsDiff(await y.data(), want.flat())).toBeLessThan(1e-5);
        y.dispose();
      }
      xt.dispose();
    });

    it('FIR up/down-sampling keep constants and halve/double the size; upsampleConv2d is the TF/JAX scatter', async () => {
      const before = tf.memory().numTensors;
      const ones = tf.ones([1, 6, 6, 2]) as tf.Tensor4D;
      const up = firUpsample2d(ones, [1, 3, 3, 1]);
      const down = firDownsample2d(ones, [1, 3, 3, 1]);
      expect(up.shape).toEqual([1, 12, 12, 2]);
      expect(down.shape).toEqual([1, 3, 3, 2]);
      // Interior pixels of a constant image stay constant (gain 1).
      expect((await up.data())[2 * (12 * 5 + 5)]).toBeCloseTo(1, 5);
      expect((await down.data())[2 * (3 * 1 + 1)]).toBeCloseTo(1, 5);
      // conv_transpose with the flipped kernel = Σ_q x[q] w[k−1−(p−2q)], then the FIR filter (pad (1, 1) for k 4, conv 3).
      const x = grid(3, 3, (i, j) => i - 2 * j + 0.5);
      const w = grid(3, 3, (i, j) => (i + 1) * (j === 1 ? 2 : 1) - j);
      const xt = tf.tensor4d(x.flat(), [1, 3, 3, 1]);
      const wt = tf.tensor4d(w.flat(), [3, 3, 1, 1]);
      const got = upsampleConv2d(xt, wt, [1, 3, 3, 1]);
      const T = grid(7, 7, (p, q) => {
        let s = 0;
        for (let i = 0; i < 3; i++)
          for (let j = 0; j < 3; j++) {
            const a = p - 2 * i;
            const b = q - 2 * j;
            if (a >= 0 && a < 3 && b >= 0 && b < 3) s += x[i][j] * w[2 - a][2 - b];
          }
        return s;
      });
      const k = setupFirKernel([1, 3, 3, 1]);
      const want = naiveUpfirdn(
        T,
        grid(4, 4, (i, j) => 4 * k.values[4 * i + j]),
        1,
        1,
        1,
        1,
      );
      expect(got.shape).toEqual([1, 6, 6, 1]);
      expect(maxAbsDiff(await got.data(), want.flat())).toBeLessThan(1e-4);
      tf.dispose([ones, up, down, xt, wt, got]);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('config errors name the key; a disposed model refuses applyWithActivations', () => {
      const msg = (c: Record<string, unknown>) => {
        try {
          modelFromConfig({ ...TINY, ...c }).dispose();
        } catch (e) {
          return (e as Error).message;
        }
        return 'no error';
      };
      expect(msg({ resblockType: 'wide' })).toMatch(/^model\.resblockType: /);
      expect(msg({ resblock_type: 'ddpm' })).toMatch(/^model\.resblock_type: not an option/);
      expect(msg({ progressive: 'skip' })).toMatch(/^model\.progressive: /);
      const m = new ScoreSdeNcsnpp(TINY, 0);
      m.dispose();
      const [x, c] = [tf.zeros([1, 8, 8, 2]), tf.ones([1]) as tf.Tensor1D];
      const before = tf.memory().numTensors;
      expect(() => m.applyWithActivations(x, c)).toThrow(/disposed/);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, c]);
    });

    for (const [label, patch] of SWITCHES) {
      it(`${label}: runs, trains (finite gradients), leak-free`, async () => {
        const before = tf.memory().numTensors;
        const model = modelFromConfig({ ...TINY, ...patch }, { seed: 1 }) as ScoreSdeNcsnpp;
        expect(model).toBeInstanceOf(ScoreSdeNcsnpp);
        const names = model.weightNames();
        expect(new Set(names).size).toBe(names.length);
        expect(names.every((n) => n.startsWith('all_modules.'))).toBe(true);
        const x = tf.randomNormal([2, 8, 8, 2], 0, 1, 'float32', 2);
        const cond = tf.tensor1d(patch.embeddingType === 'positional' ? [10, 900] : [0.5, 20]);
        const y = model.apply(x, cond);
        expect(y.shape).toEqual([2, 8, 8, 2]);
        const ysum = tf.tidy(() => tf.sum(tf.abs(y)));
        expect(Number.isFinite((await ysum.data())[0])).toBe(true);
        ysum.dispose();
        const { value, grads } = tf.variableGrads(
          () => tf.mean(tf.square(model.apply(x, cond, { training: true, seed: 3 }))) as tf.Scalar,
          model.trainableVariables(),
        );
        // Unconditional: Dense_0 exists (NCSNpp always passes temb_dim) but gets no gradient, as in the reference.
        const used = model
          .getWeights()
          .filter((w) => w.trainable && (patch.conditional !== false || !w.name.includes('.Dense_0.')));
        expect(Object.keys(grads).length).toBe(used.length);
        const gsum = tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.abs(g)))));
        const g = (await gsum.data())[0];
        expect(Number.isFinite(g) && g > 0).toBe(true);
        tf.dispose([x, cond, y, value, gsum, ...Object.values(grads)]);
        model.dispose();
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  },
  { backends: ['cpu', 'wasm'] },
);
