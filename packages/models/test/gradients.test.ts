import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import { MlpScoreModel, NcsnppModel, ScoreNet, type ScoreModel } from '@sbm/models';
import { TINY_NCSNPP, countLeaks } from './helpers';

/**
 * Central finite differences of L(θ) = Σ model(x, c) ⊙ R (R fixed) against tf.variableGrads, at a few entries of
 * the named weights. Float32: with step h the truncation error is O(h²·L''') and the rounding error about
 * ε_32·|L|/h; with h = 1e-2 and |L| ≲ 10 both stay below ~1e-4, so we accept |fd − g| ≤ 2e-3 + 2e-2·|g|.
 */
function gradCheck(model: ScoreModel, x: tf.Tensor, cond: tf.Tensor1D, names: string[], h = 1e-2): void {
  const R = tf.randomNormal(x.shape, 0, 1, 'float32', 99);
  const loss = () => tf.sum(tf.mul(model.apply(x, cond), R)) as tf.Scalar;
  const weights = new Map(model.getWeights().map((w) => [w.name, w.tensor as tf.Variable]));
  const vars = names.map((n) => weights.get(n)!);
  let grads: tf.NamedTensorMap = {};
  const leaked = countLeaks(() => {
    const r = tf.variableGrads(loss, vars);
    grads = r.grads;
    r.value.dispose();
  });
  // variableGrads returns one gradient per variable and nothing else.
  expect(leaked).toBe(vars.length);
  for (const [k, name] of names.entries()) {
    const v = vars[k];
    const g = grads[v.name].dataSync();
    const base = v.dataSync().slice();
    for (const i of [0, Math.floor(v.size / 2), v.size - 1]) {
      const at = (delta: number) => {
        const p = base.slice();
        p[i] += delta;
        tf.tidy(() => v.assign(tf.tensor(p, v.shape)));
        return tf.tidy(() => loss().dataSync()[0]);
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
      expect(Math.abs(fd - g[i]), `${name}[${i}]: fd ${fd} vs grad ${g[i]}`).toBeLessThanOrEqual(
        2e-3 + 2e-2 * Math.abs(g[i]),
      );
    }
  }
  tf.dispose(Object.values(grads));
  R.dispose();
}

describeWithBackends('gradients', () => {
  it('tiny MLP: variableGrads equals finite differences, no leaks', () => {
    const m = new MlpScoreModel(
      { name: 'mlp', inputDim: 2, hidden: [8, 8], embedding: { type: 'fourier', dim: 8, scale: 1 } },
      3,
    );
    const x = tf.randomNormal([4, 2], 0, 1, 'float32', 1);
    const t = tf.tensor1d([0.1, 0.4, 0.7, 1]);
    gradCheck(m, x, t, ['embed/dense/kernel', 'hidden.0/kernel', 'hidden.1/temb/kernel', 'out/bias']);
    tf.dispose([x, t]);
    m.dispose();
  });

  it('tiny NCSN++ (convs, GroupNorm, attention, resampling blocks): variableGrads equals finite differences', () => {
    const m = new NcsnppModel({ ...TINY_NCSNPP, dropout: 0, initScale: 1 }, 2);
    const x = tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 1);
    const t = tf.tensor1d([30, 800]);
    gradCheck(m, x, t, [
      'conv_in/kernel',
      'down.0.downsample/conv0/kernel',
      'down.1.attn.0/q/kernel',
      'mid.res.0/norm1/gamma',
      'up.1.upsample/shortcut/kernel',
      'temb/dense0/kernel',
      'conv_out/bias',
    ]);
    tf.dispose([x, t]);
    m.dispose();
  });

  it('ScoreNet (transposed convs with output padding): variableGrads equals finite differences', () => {
    const m = new ScoreNet({ name: 'scorenet', channels: [32, 32, 32, 32], embedDim: 16 }, 4);
    const x = tf.randomNormal([1, 28, 28, 1], 0, 1, 'float32', 1);
    const t = tf.tensor1d([0.3]);
    gradCheck(m, x, t, ['conv2/kernel', 'tconv3/kernel', 'tconv1/kernel']);
    tf.dispose([x, t]);
    m.dispose();
  });
});
