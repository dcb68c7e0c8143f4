import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import { SbmError, withLeakCheck } from '@sbm/core';
import { createSde, type Sde } from '@sbm/sde';
import {
  MlpScoreModel,
  NcsnppModel,
  ScoreModel,
  ScoreNet,
  createScoreFn,
  defaultParameterization,
  type ForwardContext,
} from '@sbm/models';
import { TINY_NCSNPP, maxAbsDiff, values } from './helpers';

/** A fixed fake network: model(x, c) = 2x + c (no weights), so every wrapper has a closed form. */
class Affine extends ScoreModel {
  readonly name = 'affine';
  readonly sampleShape = [3];
  constructor() {
    super({ name: 'affine' }, 0);
  }
  protected forward(x: tf.Tensor, c: tf.Tensor1D, _ctx: ForwardContext): tf.Tensor {
    return tf.add(tf.mul(x, 2), tf.reshape(c, [-1, 1]));
  }
}

// Closed forms of the marginal std (Song et al. 2021, App. B; REFERENCE.md), float64.
const logAlpha = (t: number) => -0.25 * t * t * (20 - 0.1) - 0.5 * t * 0.1;
const stdVp = (t: number) => Math.sqrt(1 - Math.exp(2 * logAlpha(t)));
const stdSubVp = (t: number) => 1 - Math.exp(2 * logAlpha(t));
const sigmaVe = (t: number) => 0.01 * (50 / 0.01) ** t;
const stdTutorial = (t: number, s = 25) => Math.sqrt((s ** (2 * t) - 1) / (2 * Math.log(s)));

const X = [0.5, -1, 2, 1.5, 0, -0.25];
const T = [0.3, 0.9];

function expectedScores(f: (x: number, t: number) => number): number[] {
  return X.map((x, i) => f(x, T[Math.floor(i / 3)]));
}

async function evalScore(sdeName: string, model: ScoreModel, opts = {}): Promise<number[]> {
  const sde = createSde(sdeName);
  const score = createScoreFn(model, sde, opts);
  const x = tf.tensor2d(X, [2, 3]);
  const t = tf.tensor1d(T);
  const s = await withLeakCheck(() => score(x, t), `score(${sdeName})`);
  const v = values(s);
  tf.dispose([x, t, s]);
  return v;
}

function relDiff(a: number[], b: number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]) / Math.max(1e-6, Math.abs(b[i]))));
}

describeWithBackends('createScoreFn', () => {
  const fake = new Affine();

  it('VP and sub-VP: s = −model(x, 999 t)/std(t)', async () => {
    expect(
      relDiff(
        await evalScore('vp', fake),
        expectedScores((x, t) => -(2 * x + 999 * t) / stdVp(t)),
      ),
    ).toBeLessThan(1e-5);
    expect(
      relDiff(
        await evalScore('subvp', fake),
        expectedScores((x, t) => -(2 * x + 999 * t) / stdSubVp(t)),
      ),
    ).toBeLessThan(1e-5);
    const s1 = await evalScore('vp', fake, { timeScale: 1 });
    expect(
      relDiff(
        s1,
        expectedScores((x, t) => -(2 * x + t) / stdVp(t)),
      ),
    ).toBeLessThan(1e-5);
  });

  it('VE and tutorial VE: s = model(x, σ(t)) (the model divides by σ itself)', async () => {
    expect(
      relDiff(
        await evalScore('ve', fake),
        expectedScores((x, t) => 2 * x + sigmaVe(t)),
      ),
    ).toBeLessThan(1e-5);
    expect(
      relDiff(
        await evalScore('tutorial-ve', fake),
        expectedScores((x, t) => 2 * x + stdTutorial(t)),
      ),
    ).toBeLessThan(1e-5);
  });

  it('explicit parameterizations override the default', async () => {
    expect(
      relDiff(
        await evalScore('vp', fake, { parameterization: 'score-time' }),
        expectedScores((x, t) => 2 * x + t),
      ),
    ).toBeLessThan(1e-6);
    expect(
      relDiff(
        await evalScore('vp', fake, { parameterization: 'score-sigma' }),
        expectedScores((x, t) => 2 * x + stdVp(t)),
      ),
    ).toBeLessThan(1e-5);
    expect(
      relDiff(
        await evalScore('ve', fake, { parameterization: 'noise-time' }),
        expectedScores((x, t) => -(2 * x + 999 * t) / sigmaVe(t)),
      ),
    ).toBeLessThan(1e-5);
    expect(() => createScoreFn(fake, createSde('vp'), { parameterization: 'eps' as never })).toThrow(
      /parameterization: expected one of/,
    );
  });

  it('tutorial ScoreNet: the score is the network output; its SDE must match', async () => {
    const net = new ScoreNet({ name: 'scorenet', imageSize: 28 }, 3);
    const sde: Sde = createSde({ name: 'tutorial-ve', sigma: 25 });
    expect(defaultParameterization(net, sde)).toBe('score-time');
    const x = tf.randomNormal([2, 28, 28, 1], 0, 1, 'float32', 9);
    const t = tf.tensor1d([0.2, 0.8]);
    const s = createScoreFn(net, sde)(x, t);
    const y = net.apply(x, t);
    expect(maxAbsDiff(values(s), values(y))).toBe(0);
    // Only the std matters: another grid size N is fine, another σ is not.
    expect(() => createScoreFn(net, createSde({ name: 'tutorial-ve', sigma: 25, N: 100 }))).not.toThrow();
    for (const bad of [
      () => createScoreFn(net, createSde('vp')),
      () => createScoreFn(net, createSde({ name: 'tutorial-ve', sigma: 24 })),
      () => createScoreFn(net, sde, { parameterization: 'noise-time' }),
    ]) {
      expect(bad).toThrow(SbmError);
      try {
        bad();
      } catch (e) {
        expect((e as SbmError).code).toBe('CONFIG_MISMATCH');
      }
    }
    tf.dispose([x, t, s, y]);
    net.dispose();
  });

  it('ScoreNet divides by marginal_prob_std(t): two σ with one seed differ exactly by std ratios', () => {
    // Same seed ⇒ same weights, so out_25 · std_25(t) = out_10 · std_10(t) = the raw network output.
    const a = new ScoreNet({ name: 'scorenet', marginalProbStd: { name: 'tutorial-ve', sigma: 25 } }, 5);
    const b = new ScoreNet({ name: 'scorenet', marginalProbStd: { name: 'tutorial-ve', sigma: 10 } }, 5);
    const x = tf.randomNormal([2, 28, 28, 1], 0, 1, 'float32', 2);
    const t = tf.tensor1d([0.1, 0.7]);
    const ya = values(tf.tidy(() => a.apply(x, t)));
    const yb = values(tf.tidy(() => b.apply(x, t)));
    const per = 28 * 28;
    const ratio = ya.map((v, i) => (v * stdTutorial(T2(i), 25)) / (yb[i] * stdTutorial(T2(i), 10)));
    function T2(i: number) {
      return i < per ? 0.1 : 0.7;
    }
    expect(Math.max(...ratio.map((r) => Math.abs(r - 1)))).toBeLessThan(1e-4);
    tf.dispose([x, t]);
    a.dispose();
    b.dispose();
  });

  it('MLP marginalProbStd and NCSN++ scaleBySigma divide the same network by std(t) and by σ', () => {
    const cfg = { name: 'mlp' as const, inputDim: 3, hidden: [8] };
    const plain = new MlpScoreModel(cfg, 8);
    const tut = new MlpScoreModel({ ...cfg, marginalProbStd: { name: 'vp' } }, 8);
    const x = tf.tensor2d(X, [2, 3]);
    const t = tf.tensor1d(T);
    const yp = values(tf.tidy(() => plain.apply(x, t)));
    const yt = values(tf.tidy(() => tut.apply(x, t)));
    expect(
      relDiff(
        yt,
        yp.map((v, i) => v / stdVp(T[Math.floor(i / 3)])),
      ),
    ).toBeLessThan(1e-5);

    const ncfg = {
      name: 'ncsnpp' as const,
      imageSize: 8,
      imageChannels: 1,
      nf: 8,
      chMult: [1, 2],
      numResBlocks: 1,
      attnResolutions: [],
      embedding: 'fourier' as const,
      initScale: 1,
    };
    const n0 = new NcsnppModel(ncfg, 3);
    const n1 = new NcsnppModel({ ...ncfg, scaleBySigma: true }, 3);
    const xi = tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 4);
    const sig = tf.tensor1d([0.05, 20]);
    const y0 = values(tf.tidy(() => n0.apply(xi, sig)));
    const y1 = values(tf.tidy(() => n1.apply(xi, sig)));
    expect(
      relDiff(
        y1,
        y0.map((v, i) => v / (i < 64 ? 0.05 : 20)),
      ),
    ).toBeLessThan(1e-5);
    tf.dispose([x, t, xi, sig]);
    [plain, tut, n0, n1].forEach((m) => m.dispose());
  });

  it('training mode draws fresh dropout masks per call from the seed stream', () => {
    const m = new NcsnppModel({ ...TINY_NCSNPP, attnResolutions: [], dropout: 0.3, initScale: 1 }, 1);
    const sde = createSde('vp');
    const x = tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 4);
    const t = tf.tensor1d([0.3, 0.6]);
    const calls = (seed: number) => {
      const f = createScoreFn(m, sde, { training: true, seed });
      return [values(tf.tidy(() => f(x, t))), values(tf.tidy(() => f(x, t)))];
    };
    const [a1, a2] = calls(5);
    const [b1, b2] = calls(5);
    expect(b1).toEqual(a1);
    expect(b2).toEqual(a2);
    expect(maxAbsDiff(a1, a2)).toBeGreaterThan(1e-4);
    expect(() => createScoreFn(m, sde, { training: true })).toThrow(/seed: expected a dropout seed/);
    tf.dispose([x, t]);
    m.dispose();
  });
});
