import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SubVpSde, TutorialVeSde, VeSde, VpSde, defineSde, type DiscreteCoefficients, type Sde } from '@sbm/sde';
import { sdeConformance } from '@sbm/sde/testing';

// The built-in SDEs through the exported conformance suite (the same one plugins run), with defaults and stretched T.
const makers: (() => Sde)[] = [
  () => new VeSde(),
  () => new VpSde(),
  () => new SubVpSde(),
  () => new TutorialVeSde(),
  () => new VeSde({ sigmaMin: 0.1, sigmaMax: 20, T: 2 }),
  () => new VpSde({ betaMin: 0.5, betaMax: 10, T: 2, N: 500 }),
  () => new SubVpSde({ T: 2 }),
];

for (const make of makers) {
  const sde = make();
  describe(`${sde.name} ${JSON.stringify(sde.toConfig())}`, () => {
    for (const c of sdeConformance(make)) it(c.name, c.run);
  });
}

// The suite must be able to fail: each broken SDE below breaks one identity, and the matching case has to throw.
describe('sdeConformance catches broken SDEs', () => {
  class WrongG extends VpSde {
    override diffusion(t: number): number {
      return 1.01 * super.diffusion(t);
    }
    override diffusionT(t: tf.Tensor1D): tf.Tensor1D {
      return tf.tidy(() => tf.mul(super.diffusionT(t), 1.01));
    }
  }
  class WrongStdT extends VeSde {
    override stdT(t: tf.Tensor1D): tf.Tensor1D {
      return tf.tidy(() => tf.mul(super.stdT(t), 1 + 1e-3));
    }
  }
  // an exponential VP schedule, α = e^{−5t}, σ² = 1 − e^{−10t}, whose marginal at T = 1 has std ≈ 1
  const wrongPrior = (): Sde =>
    defineSde({
      name: 'bad-prior',
      priorStd: 1.1,
      logAlpha: (t, M) => M.mul(t, -5),
      variance: (t, M) => M.neg(M.expm1(M.mul(t, -10))),
    });
  class WrongInverse extends VpSde {
    override tFromLambda(lambda: number): number {
      return Math.min(this.T, super.tFromLambda(lambda) * (1 + 1e-6));
    }
  }
  class Leaky extends VpSde {
    override alphaT(t: tf.Tensor1D): tf.Tensor1D {
      tf.keep(tf.zeros([1]));
      return super.alphaT(t);
    }
  }
  class WrongChain extends SubVpSde {
    override discretize(x: tf.Tensor, t: tf.Tensor1D): DiscreteCoefficients {
      return tf.tidy(() => {
        const d = super.discretize(x, t);
        return { f: d.f, G: tf.mul(d.G, 1.1) as tf.Tensor1D };
      });
    }
  }
  const broken: [string, () => Sde, RegExp, RegExp][] = [
    ['g 1% too large', () => new WrongG(), /variance ODE/, /dσ²\/dt = 2 f σ² \+ g² at t = /],
    ['stdT 1e-3 off', () => new WrongStdT(), /tensor forms/, /std\(.*\): tensor form/],
    ['prior std 1.1', wrongPrior, /the prior N/, /priorStd 1\.1/],
    ['tFromLambda 1e-6 off', () => new WrongInverse(), /round-trip/, /tFromLambda\(lambda/],
    ['discrete G 10% too large', () => new WrongChain(), /discretize is/, /G² = .* is not ∫g² over a step/],
    ['alphaT leaks', () => new Leaky(), /leaks no tensors/, /tensor\(s\) leaked/],
  ];
  for (const [what, make, caseName, message] of broken) {
    it(`${what}: the "${caseName.source}" case throws`, async () => {
      const c = sdeConformance(make).find((x) => caseName.test(x.name));
      expect(c).toBeDefined();
      await expect(Promise.resolve().then(() => c!.run())).rejects.toThrow(message);
    });
  }
});
