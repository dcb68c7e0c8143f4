import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import { SbmError } from '@sbm/core';
import {
  MlpScoreModel,
  NcsnppModel,
  ScoreNet,
  listModels,
  modelFromConfig,
  type ModelConfig,
  type NcsnppConfig,
  type ScoreModel,
} from '@sbm/models';
import { TINY_NCSNPP, countLeaks, maxAbsDiff, values } from './helpers';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof SbmError ? `${e.code}: ${e.message}` : `other: ${String(e)}`;
  }
  return undefined;
}

/** Small U-Nets that keep the suites fast on wasm. */
const tiny = TINY_NCSNPP;
const ncsnpp28: NcsnppConfig = {
  name: 'ncsnpp',
  imageSize: 28,
  imageChannels: 1,
  nf: 16,
  chMult: [1, 2, 2],
  numResBlocks: 1,
  attnResolutions: [7],
};
const ncsnpp32: NcsnppConfig = {
  name: 'ncsnpp',
  imageSize: 32,
  imageChannels: 3,
  nf: 16,
  chMult: [1, 2, 2],
  numResBlocks: 1,
  attnResolutions: [8],
  resblockType: 'ddpm',
  embedding: 'fourier',
  scaleBySigma: true,
};

describe_counts();

function describe_counts(): void {
  describeWithBackends(
    'parameter counts',
    () => {
      it('tutorial ScoreNet (1 channel) has the notebook’s 1,115,297 trainable parameters', () => {
        const m = new ScoreNet();
        expect(m.countParams()).toBe(1_115_297);
        // + the 128 fixed Fourier frequencies, which torch does not count either (requires_grad=False) but we save.
        expect(m.countParams({ includeFixed: true })).toBe(1_115_297 + 128);
        const shapes = Object.fromEntries(m.getWeights().map((w) => [w.name, w.tensor.shape]));
        expect(shapes['conv1/kernel']).toEqual([3, 3, 1, 32]);
        expect(shapes['tconv3/kernel']).toEqual([3, 3, 64, 256]);
        expect(shapes['tconv1/bias']).toEqual([1]);
        expect(shapes['embed/dense/kernel']).toEqual([256, 256]);
        m.dispose();
      });

      it('score_sde ddpm.py CIFAR-10 configuration: 35,218,947 parameters', () => {
        // Ho et al.'s CIFAR-10 model has 35,746,307 parameters; it applies attention after each of the 3 up-path
        // blocks at 16×16, where score_sde's ddpm.py / ncsnpp.py apply it once per level: 2 fewer attention blocks of
        // 256 channels, each GroupNorm (512) + 4 NIN (256² + 256) = 263,680. 35,746,307 − 2·263,680 = 35,218,947.
        const m = new NcsnppModel({ name: 'ncsnpp', resblockType: 'ddpm', skipRescale: false });
        expect(m.countParams()).toBe(35_218_947);
        m.dispose();
      });

      it('a tiny NCSN++ has the hand-counted 47,985 parameters', () => {
        // nf 8, chMult [1, 2], 1 block, attention at 4×4, 8×8×1 input, BigGAN blocks (W + b per conv / dense,
        // γ + β per GroupNorm): temb 288 + 1056; conv_in 80; level 0: block 1464, down-block 1536; level 1: block 4208,
        // attn 1120; mid 5232 + 1120 + 5232; up level 1: blocks 8096 + 6800, attn 1120, up-block 5504;
        // up level 0: blocks 2848 + 2192; norm_out 16; conv_out 73.
        const m = new NcsnppModel({
          name: 'ncsnpp',
          imageSize: 8,
          imageChannels: 1,
          nf: 8,
          chMult: [1, 2],
          numResBlocks: 1,
          attnResolutions: [4],
        });
        expect(m.countParams()).toBe(47_985);
        m.dispose();
      });
    },
    { backends: ['cpu'] },
  );
}

describeWithBackends('models', ({ backend }) => {
  const cases: { label: string; make: () => ScoreModel; shape: number[]; cond: number[] }[] = [
    { label: 'ScoreNet 28×28×1', make: () => new ScoreNet(), shape: [2, 28, 28, 1], cond: [0.5, 0.01] },
    {
      label: 'ScoreNet 32×32×3',
      make: () => new ScoreNet({ name: 'scorenet', imageSize: 32, imageChannels: 3 }),
      shape: [2, 32, 32, 3],
      cond: [0.5, 0.01],
    },
    {
      label: 'NCSN++ 28×28×1 (BigGAN, positional)',
      make: () => new NcsnppModel(ncsnpp28),
      shape: [2, 28, 28, 1],
      cond: [999, 1],
    },
    {
      label: 'NCSN++ 32×32×3 (DDPM blocks, Fourier, ÷σ)',
      make: () => new NcsnppModel(ncsnpp32),
      shape: [2, 32, 32, 3],
      cond: [50, 0.01],
    },
    {
      label: 'MLP D = 2',
      make: () => new MlpScoreModel({ name: 'mlp', inputDim: 2 }),
      shape: [2, 2],
      cond: [0.5, 0.01],
    },
  ];
  for (const c of cases) {
    it(`${c.label}: output shape, finite, leak-free`, () => {
      const m = c.make();
      const x = tf.randomNormal(c.shape, 0, 1, 'float32', 1);
      const t = tf.tensor1d(c.cond);
      let shape: number[] = [];
      let finite = false;
      const leaked = countLeaks(() => {
        const y = m.apply(x, t);
        shape = y.shape;
        finite = tf.tidy(() => tf.all(tf.isFinite(y)).dataSync()[0]) === 1;
        return y;
      });
      expect(leaked).toBe(0);
      expect(shape).toEqual(c.shape);
      expect(finite).toBe(true);
      tf.dispose([x, t]);
      m.dispose();
    });
  }

  it('same seed ⇒ same weights; another seed ⇒ other weights', () => {
    const a = new MlpScoreModel({ name: 'mlp', inputDim: 3 }, 11);
    const b = new MlpScoreModel({ name: 'mlp', inputDim: 3 }, 11);
    const c = new MlpScoreModel({ name: 'mlp', inputDim: 3 }, 12);
    const flat = (m: ScoreModel) => m.getWeights().flatMap((w) => values(w.tensor));
    expect(flat(a)).toEqual(flat(b));
    expect(maxAbsDiff(flat(a), flat(c))).toBeGreaterThan(0.01);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('config round trip: JSON config + named weights rebuild the same function', () => {
    for (const cfg of [
      tiny,
      { name: 'mlp', inputDim: 2, hidden: [16, 16], embedding: { type: 'positional', dim: 8 } },
    ] as ModelConfig[]) {
      const m = modelFromConfig(cfg, { seed: 1 });
      const json = JSON.parse(JSON.stringify(m.toConfig())) as ModelConfig;
      expect(json.name).toBe(cfg.name);
      // Defaults are written out, so the config does not depend on a later change of defaults.
      if (json.name === 'ncsnpp')
        expect(json).toMatchObject({ dropout: 0.1, resblockType: 'biggan', skipRescale: true, groupNormEps: 1e-6 });
      const copy = modelFromConfig(json, { seed: 2 });
      expect(copy.weightNames()).toEqual(m.weightNames());
      const x = tf.randomNormal([2, ...m.sampleShape], 0, 1, 'float32', 3);
      const t = tf.tensor1d([3, 700]);
      const before = values(tf.tidy(() => copy.apply(x, t)));
      copy.setWeights(m.getWeights());
      const mine = m.apply(x, t);
      const theirs = copy.apply(x, t);
      expect(maxAbsDiff(values(theirs), values(mine))).toBe(0);
      expect(maxAbsDiff(before, values(mine))).toBeGreaterThan(0);
      // A tf.io.NamedTensorMap works too.
      copy.setWeights(Object.fromEntries(m.getWeights().map((w) => [w.name, w.tensor])));
      tf.dispose([x, t, mine, theirs]);
      m.dispose();
      copy.dispose();
    }
    expect(listModels()).toEqual(expect.arrayContaining(['mlp', 'scorenet', 'ncsnpp']));
  });

  it('bad configs, inputs and weights throw SbmErrors naming the argument', () => {
    expect(code(() => modelFromConfig({ name: 'resnet' }))).toMatch(/^UNKNOWN_NAME: model.name: expected one of "mlp"/);
    expect(code(() => modelFromConfig({ name: 'ncsnpp', nf: 8, chMult: [1, 2, 2, 2], imageSize: 28 }))).toMatch(
      /^INVALID_ARGUMENT: model.imageSize: expected a multiple of 2\^3 = 8/,
    );
    expect(code(() => modelFromConfig({ name: 'scorenet', imagesize: 28 }))).toMatch(
      /^INVALID_ARGUMENT: model.imagesize: not an option/,
    );
    expect(code(() => modelFromConfig({ name: 'ncsnpp', nf: 8, scaleBySigma: true }))).toMatch(
      /^INVALID_ARGUMENT: model.scaleBySigma/,
    );
    expect(code(() => modelFromConfig({ name: 'mlp', inputDim: 0 }))).toMatch(
      /^INVALID_ARGUMENT: model.inputDim: expected an integer >= 1, got 0/,
    );
    const m = new MlpScoreModel({ name: 'mlp', inputDim: 2, hidden: [4] });
    const x = tf.zeros([3, 2]);
    expect(code(() => m.apply(x, tf.zeros([2]) as tf.Tensor1D))).toMatch(
      /^INVALID_SHAPE: cond: expected shape \[3\], got \[2\]/,
    );
    expect(code(() => m.apply(tf.zeros([3, 5]), tf.zeros([3]) as tf.Tensor1D))).toMatch(
      /^INVALID_SHAPE: x: expected shape \[\*, 2\]/,
    );
    expect(code(() => m.setWeights([{ name: 'nope', tensor: x }]))).toMatch(/^UNKNOWN_NAME: weights: "nope"/);
    expect(code(() => m.setWeights([{ name: 'out/bias', tensor: x }]))).toMatch(
      /^INVALID_SHAPE: weights\["out\/bias"\]: expected shape \[2\]/,
    );
    expect(code(() => m.setWeights([{ name: 'out/bias', tensor: tf.zeros([2]) }]))).toMatch(
      /^CONFIG_MISMATCH: weights: missing/,
    );
    m.setWeights([{ name: 'out/bias', tensor: tf.tensor1d([5, 6]) }], { strict: false });
    expect(values(m.getWeights().find((w) => w.name === 'out/bias')!.tensor)).toEqual([5, 6]);
    m.dispose();
    expect(code(() => m.apply(x, tf.zeros([3]) as tf.Tensor1D))).toMatch(/has been disposed/);
    x.dispose();
  });

  it('dropout: seeded in training mode, off in evaluation', () => {
    const cfg: NcsnppConfig = { ...TINY_NCSNPP, attnResolutions: [], dropout: 0.5, initScale: 1 };
    const m = new NcsnppModel(cfg, 4);
    const noDrop = new NcsnppModel({ ...cfg, dropout: 0 }, 4);
    const x = tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 5);
    const t = tf.tensor1d([10, 20]);
    const run = (mm: ScoreModel, opts = {}) => {
      const y = mm.apply(x, t, opts);
      const v = values(y);
      y.dispose();
      return v;
    };
    const a = run(m, { training: true, seed: 1 });
    expect(run(m, { training: true, seed: 1 })).toEqual(a);
    expect(maxAbsDiff(run(m, { training: true, seed: 2 }), a)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(run(m), a)).toBeGreaterThan(1e-3);
    // Dropout has no weights: in evaluation the model is the dropout-free one with the same seed.
    expect(maxAbsDiff(run(m), run(noDrop))).toBe(0);
    expect(code(() => m.apply(x, t, { training: true }))).toMatch(
      /^INVALID_ARGUMENT: seed: expected a seed for the dropout masks/,
    );
    tf.dispose([x, t]);
    m.dispose();
    noDrop.dispose();
  });

  it('dispose frees every variable', () => {
    const before = tf.memory().numTensors;
    const m = backend === 'cpu' ? new ScoreNet() : new NcsnppModel(ncsnpp28);
    expect(tf.memory().numTensors - before).toBe(m.getWeights().length);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
