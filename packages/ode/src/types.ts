import type * as tf from '@tensorflow/tfjs';

/**
 * Right-hand side of dy/dt = f(t, y). `y` is the whole state as one tensor (a caller that integrates several
 * quantities together, such as [x, log p] for the likelihood, packs them into one). The solvers call it inside
 * tf.tidy, so it may allocate freely; it must return a tensor of y's shape.
 */
export type OdeFn = (t: number, y: tf.Tensor) => tf.Tensor;

/** What a solver reports after each accepted step. */
export interface OdeProgress {
  /** Time reached. */
  t: number;
  /** Accepted steps so far. */
  step: number;
  /** Right-hand side evaluations so far. */
  nfe: number;
  /** Size of the step just taken (signed). */
  h: number;
  /** |t − t0| / |t1 − t0|, in [0, 1]. */
  fraction: number;
}

/** Options shared by every solver. */
export interface OdeOptions {
  /** Checked once per step; an aborted signal ends the solve with SbmError('ABORTED'). */
  signal?: AbortSignal;
  /** Called after each accepted step. */
  onProgress?: (p: OdeProgress) => void;
  /**
   * Called after each accepted step with the state at `t` (trajectory streaming). The tensor is borrowed: it is
   * disposed by the solver later, so clone it (or read it) to keep it.
   */
  onStep?: (t: number, y: tf.Tensor) => void | Promise<void>;
  /** Yield to the event loop every this many steps (default 1) so a page stays responsive and aborts can land. */
  yieldEvery?: number;
}

/** Result of a solve. The caller owns `y`. */
export interface OdeResult {
  /** State at the final time. */
  y: tf.Tensor;
  /** Final time (t1). */
  t: number;
  /** Right-hand side evaluations. */
  nfe: number;
  /** Accepted steps. */
  steps: number;
  /** Rejected step attempts (always 0 for fixed-step methods). */
  rejected: number;
  /** Times of the accepted states, t0 first and t1 last. */
  ts: number[];
}
