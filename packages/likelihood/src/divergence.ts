import * as tf from '@tensorflow/tfjs';
import { SbmError, checkFnOutput, rademacher, randomNormal, withGradientCleanup, type SeedStream } from '@sbm/core';

/** How ∇·f is computed: the exact trace (D vector-Jacobian products) or Hutchinson–Skilling with v ~ the named law. */
export type DivergenceMethod = 'exact' | 'rademacher' | 'gaussian';

export const DIVERGENCE_METHODS: readonly DivergenceMethod[] = ['exact', 'rademacher', 'gaussian'];

/**
 * Probe vectors for a batch of B samples with D values each, laid out as P stacked copies of the batch, [P·B, D]:
 * for 'exact' P = D and copy d is the basis vector e_d (Σ_d e_dᵀ J e_d = tr J); for Hutchinson P = `probes` and the
 * vectors are Rademacher or standard normal, with E[v vᵀ] = I so that E[vᵀ J v] = tr J (Hutchinson 1990; Skilling 1989).
 */
export function makeProbes(
  method: DivergenceMethod,
  batch: number,
  D: number,
  probes: number,
  stream: SeedStream,
): { v: tf.Tensor2D; copies: number } {
  if (method === 'exact') {
    const v = tf.tidy(() => tf.reshape(tf.tile(tf.reshape(tf.eye(D), [D, 1, D]), [1, batch, 1]), [D * batch, D]));
    return { v: v as tf.Tensor2D, copies: D };
  }
  const shape = [probes * batch, D];
  const v = method === 'rademacher' ? rademacher(shape, stream) : randomNormal(shape, stream);
  return { v: v as tf.Tensor2D, copies: probes };
}

/**
 * Value and divergence estimates of a vector field F on stacked copies of a batch: with xs [P·B, ...] and probes
 * v [P·B, D], returns F(xs) and vᵀ (∂F/∂x) v per row ([P·B]) from one forward and one backward pass
 * (vᵀJ = ∇ₓ(vᵀF), a vector-Jacobian product). Rows must not interact inside F (no batch statistics).
 */
export function valueAndProbe(
  field: (x: tf.Tensor) => tf.Tensor,
  xs: tf.Tensor,
  v: tf.Tensor2D,
): { value: tf.Tensor; vjv: tf.Tensor1D } {
  try {
    return withGradientCleanup(() =>
      tf.tidy(() => {
        const vShaped = tf.reshape(v, xs.shape);
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => {
          const out = field(x);
          checkFnOutput(out, x, 'score', 'the probability-flow drift (from the score function)');
          return out;
        })(xs, vShaped as never);
        const vjv = tf.sum(tf.mul(tf.reshape(grad, v.shape), v), 1) as tf.Tensor1D;
        return { value, vjv };
      }),
    );
  } catch (e) {
    if (e instanceof Error && !(e instanceof SbmError) && /Cannot compute gradient/.test(e.message)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        "score: the probability-flow drift does not depend on x (the score function's output does not depend on x " +
          'and the SDE has no drift), so its divergence cannot be computed; build the score from x with tf ops ' +
          '(no dataSync / arraySync / tf.stopGradient on the way)',
        { argument: 'score' },
        { cause: e },
      );
    }
    throw e;
  }
}
