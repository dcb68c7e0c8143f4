import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue, randomNormal, SeedStream } from '@sbm/core';

/**
 * A linear measurement y = A x (+ noise) on one signal of shape `inShape` (batched: [b, ...inShape] → [b, ...outShape]).
 * Everything is tf ops, so DPS can take gradients through `forward`. Complex outputs (the DFT of MRI) are two real
 * channels, and `adjoint` is the adjoint of that real map.
 */
export interface LinearOperator {
  /** For messages and metrics: 'mask', 'grayscale', 'downsample', 'gaussian', 'radon', 'mri', or the user's. */
  readonly name: string;
  /** One signal, without the batch axis, e.g. [28, 28, 1]. */
  readonly inShape: readonly number[];
  /** One measurement, without the batch axis. */
  readonly outShape: readonly number[];
  /** A x: [b, ...inShape] → [b, ...outShape]. */
  forward(x: tf.Tensor): tf.Tensor;
  /** Aᵀ y: [b, ...outShape] → [b, ...inShape] (passes the dot-product test ⟨A x, y⟩ = ⟨x, Aᵀ y⟩). */
  adjoint(y: tf.Tensor): tf.Tensor;
  /** The Moore–Penrose pseudo-inverse A⁺ y: [b, ...outShape] → [b, ...inShape] (λ-projection needs it). */
  pinv?(y: tf.Tensor): tf.Tensor;
  /**
   * A = M·T with T orthonormal and M a 0/1 coordinate mask in T's space (inpainting: T = I; colorization: the
   * decoupled colour basis; MRI: the unitary DFT). score_sde's projection works in this form.
   */
  readonly decoupled?: DecoupledForm;
  /** Frees the tensors the operator holds (matrices, masks). Idempotent. */
  dispose?(): void;
}

/** A = M·T: `transform` is T ([b, ...inShape] → [b, ...maskShape]), `inverse` is Tᵀ, `mask` is M ([...maskShape], 0/1). */
export interface DecoupledForm {
  transform(x: tf.Tensor): tf.Tensor;
  inverse(xt: tf.Tensor): tf.Tensor;
  readonly mask: tf.Tensor;
}

export interface AdjointTestOptions {
  /** Random (x, y) pairs (default 3). */
  trials?: number;
  /** Largest accepted |⟨Ax, y⟩ − ⟨x, Aᵀy⟩| / (‖Ax‖‖y‖ + ‖x‖‖Aᵀy‖) (default 1e-4, float32). */
  tol?: number;
  seed?: number;
}

export interface AdjointTestResult {
  /** The largest relative mismatch over the trials. */
  relError: number;
  passed: boolean;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The dot-product test: ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for random Gaussian x, y (batch 2). GPU-safe: one awaited readback.
 */
export async function adjointTest(op: LinearOperator, opts: AdjointTestOptions = {}): Promise<AdjointTestResult> {
  const trials = opts.trials ?? 3;
  const tol = opts.tol ?? 1e-4;
  const stream = new SeedStream(opts.seed ?? 1234);
  const errs = tf.tidy(() => {
    const out: tf.Scalar[] = [];
    for (let k = 0; k < trials; k++) {
      const x = randomNormal([2, ...op.inShape], stream);
      const y = randomNormal([2, ...op.outShape], stream);
      const ax = op.forward(x);
      const aty = op.adjoint(y);
      const lhs = tf.sum(tf.mul(ax, y));
      const rhs = tf.sum(tf.mul(x, aty));
      const scale = tf.add(tf.mul(tf.norm(ax), tf.norm(y)), tf.mul(tf.norm(x), tf.norm(aty)));
      out.push(tf.div(tf.abs(tf.sub(lhs, rhs)), tf.maximum(scale, 1e-30)) as tf.Scalar);
    }
    return tf.stack(out);
  });
  const v = await errs.data();
  errs.dispose();
  const relError = Math.max(...Array.from(v));
  return { relError, passed: Number.isFinite(relError) && relError <= tol };
}

/** INVALID_SHAPE unless `x` is [b, ...shape]. */
export function checkBatchShape(x: unknown, shape: readonly number[], argument: string, what: string): tf.Tensor {
  if (!(x instanceof tf.Tensor)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${argument}: expected a tensor [batch, ${shape.join(', ')}], got ${describeValue(x)}`,
      {
        argument,
      },
    );
  }
  const ok = x.rank === shape.length + 1 && shape.every((d, i) => x.shape[i + 1] === d);
  if (!ok) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${argument}: expected ${what} of shape [batch, ${shape.join(', ')}], got [${x.shape.join(', ')}]`,
      { argument },
    );
  }
  return x;
}

function checkShape(v: unknown, name: string): readonly number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((d) => Number.isInteger(d) && d > 0)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator.${name}: expected a non-empty array of positive integers, got ${describeValue(v)}`,
      {
        argument: 'operator',
      },
    );
  }
  return v as number[];
}

/**
 * Checks a user's operator and runs the dot-product adjoint test on it: INVALID_ARGUMENT naming `argument` (default
 * 'operator') when a member is missing, a shape is wrong or Aᵀ is not the adjoint of A. Returns the operator.
 */
export async function checkOperator(
  op: unknown,
  opts: AdjointTestOptions & { argument?: string } = {},
): Promise<LinearOperator> {
  const argument = opts.argument ?? 'operator';
  if (op === null || typeof op !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${argument}: expected a LinearOperator { inShape, outShape, forward, adjoint }, got ${describeValue(op)}`,
      {
        argument,
      },
    );
  }
  const o = op as Partial<LinearOperator>;
  checkShape(o.inShape, 'inShape');
  checkShape(o.outShape, 'outShape');
  for (const k of ['forward', 'adjoint'] as const) {
    if (typeof o[k] !== 'function') {
      throw new SbmError('INVALID_ARGUMENT', `${argument}.${k}: expected a function, got ${describeValue(o[k])}`, {
        argument,
      });
    }
  }
  if (o.pinv !== undefined && typeof o.pinv !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${argument}.pinv: expected a function or undefined, got ${describeValue(o.pinv)}`,
      {
        argument,
      },
    );
  }
  const full = op as LinearOperator;
  // Output shapes: one small batch through forward and adjoint.
  tf.tidy(() => {
    checkBatchShape(full.forward(tf.zeros([1, ...full.inShape])), full.outShape, `${argument}.forward(x)`, 'A x');
    checkBatchShape(full.adjoint(tf.zeros([1, ...full.outShape])), full.inShape, `${argument}.adjoint(y)`, 'Aᵀ y');
  });
  const r = await adjointTest(full, opts);
  if (!r.passed) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${argument}: adjoint fails the dot-product test: |⟨A x, y⟩ − ⟨x, Aᵀ y⟩| is ${r.relError.toExponential(2)} of the scale (tolerance ${(opts.tol ?? 1e-4).toExponential(0)}); adjoint(y) must be Aᵀ y`,
      { argument },
    );
  }
  return full;
}

/** Number of entries of one signal / one measurement. */
export function inSize(op: LinearOperator): number {
  return size(op.inShape);
}
export function outSize(op: LinearOperator): number {
  return size(op.outShape);
}
