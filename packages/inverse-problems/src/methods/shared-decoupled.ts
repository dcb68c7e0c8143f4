import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue, randomNormal, type SeedStream } from '@sbm/core';
import type { Sde } from '@sbm/sde';
import type { DecoupledForm, LinearOperator } from '../operator';

/**
 * The decoupled form A = M·T (T orthonormal, M a 0/1 mask in T's space) as the projection-type methods use it:
 * score_sde's inpainter and colorizer replace the known T-coordinates, x ← T⁻¹(T x ⊙ (1 − m) + v ⊙ m).
 */
export interface PreparedDecoupled {
  form: DecoupledForm;
  /** m as [1, ...maskShape] (broadcasts over the batch). */
  mask: tf.Tensor;
  /** 1 − m. */
  unknown: tf.Tensor;
  /** The known T-coordinates yT = T Aᵀ y = Mᵀ y (as T Tᵀ = I), [b, ...maskShape], zero where m = 0. */
  yT: tf.Tensor;
  dispose(): void;
}

/**
 * Checks `operator.decoupled` and forms yT. INVALID_ARGUMENT naming 'operator' when the operator has no decoupled form
 * or its members are malformed, naming 'operator.decoupled.mask' when the mask is not 0/1 or not T's output shape.
 * One awaited readback of the mask (not per step).
 */
export async function prepareDecoupled(op: LinearOperator, y: tf.Tensor, method: string): Promise<PreparedDecoupled> {
  const form = op.decoupled;
  if (form === undefined || form === null || typeof form !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator: method "${method}" needs an operator with a decoupled form A = M·T (operator.decoupled { transform, inverse, mask }, as the mask, grayscale and mri operators have), got "${op.name}" without one${method === 'projection' || method === 'repaint' ? "; use 'lambda-projection' (needs pinv) or 'dps' for a general A" : ''}`,
      { argument: 'operator' },
    );
  }
  for (const k of ['transform', 'inverse'] as const) {
    if (typeof form[k] !== 'function') {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `operator.decoupled.${k}: expected a function, got ${describeValue(form[k])}`,
        {
          argument: 'operator',
        },
      );
    }
  }
  if (!(form.mask instanceof tf.Tensor) || form.mask.isDisposed) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator.decoupled.mask: expected a live 0/1 tensor, got ${describeValue(form.mask)}`,
      {
        argument: 'operator.decoupled.mask',
      },
    );
  }
  const tShape = tf.tidy(() => form.transform(tf.zeros([1, ...op.inShape])).shape.slice(1));
  const mShape = form.mask.shape;
  if (tShape.length !== mShape.length || tShape.some((d, i) => d !== mShape[i])) {
    throw new SbmError(
      'INVALID_SHAPE',
      `operator.decoupled.mask: expected the shape of T x without the batch, [${tShape.join(', ')}], got [${mShape.join(', ')}]`,
      { argument: 'operator.decoupled.mask' },
    );
  }
  const mv = await form.mask.data();
  const bad = Array.from(mv).findIndex((v) => v !== 0 && v !== 1);
  if (bad >= 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator.decoupled.mask: expected entries 0 or 1 (1 = known T-coordinate), got ${mv[bad]} at flat index ${bad}`,
      { argument: 'operator.decoupled.mask' },
    );
  }
  const { mask, unknown, yT } = tf.tidy(() => {
    const m = tf.expandDims(form.mask, 0);
    return { mask: m, unknown: tf.sub(1, m), yT: tf.mul(form.transform(op.adjoint(y)), m) };
  });
  return { form, mask, unknown, yT, dispose: () => tf.dispose([mask, unknown, yT]) };
}

/**
 * Replaces the known T-coordinates of x by the measurement perturbed to time t, mean + std·z with
 * (mean, std) = marginal_prob(yT, t) = (α(t) yT, σ(t)) (score_sde controllable_generation.py), z ~ N(0, I) drawn in
 * T-space. Returns the new x and the noise-free `mean` (for the x_mean rules of the callers). Call inside tf.tidy.
 */
export function replaceKnown(
  d: PreparedDecoupled,
  sde: Sde,
  x: tf.Tensor,
  t: number,
  stream: SeedStream,
): { x: tf.Tensor; mean: tf.Tensor } {
  const xT = d.form.transform(x);
  const mean = tf.mul(d.yT, sde.alpha(t));
  const known = tf.add(mean, tf.mul(randomNormal(xT.shape, stream), sde.std(t)));
  return { x: d.form.inverse(tf.add(tf.mul(xT, d.unknown), tf.mul(known, d.mask))), mean };
}

/** T⁻¹(T v ⊙ (1 − m) + w ⊙ m): v's unknown T-coordinates with w in the known ones. Call inside tf.tidy. */
export function mergeKnown(d: PreparedDecoupled, v: tf.Tensor, w: tf.Tensor): tf.Tensor {
  return d.form.inverse(tf.add(tf.mul(d.form.transform(v), d.unknown), tf.mul(w, d.mask)));
}
