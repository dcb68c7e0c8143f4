import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue, withGradientCleanup } from '@sbm/core';
import type { ExponentialMovingAverage, ScoreModel } from '@sbm/models';
import { Adam, clipCoefficientT, globalNorm, warmupLr } from './adam';

/** What one update leaves on the device for the loop to read later, in one batch with the others. */
export interface StepStats {
  /** [loss, gradient global norm before clipping, 1 if the batch was finite else 0]. */
  stats: tf.Tensor1D;
  lr: number;
}

export interface StepConfig {
  model: ScoreModel;
  adam: Adam;
  ema: ExponentialMovingAverage;
  lr: number;
  warmup: number;
  gradClip: number | null;
}

/**
 * One training update (score_sde losses.optimization_manager): loss and gradients in one tf.variableGrads, the
 * global-norm clip, an Adam step with linear warm-up and the EMA update — all on the device, nothing read back.
 *
 * The NaN guard's device half: `healthy` stays true while every step so far had a finite batch, loss and gradient
 * norm, and an update is applied only while it is true. After the first bad step the weights and Adam moments
 * keep their last finite values until the loop reads the flags (every few steps) and stops the run.
 */
export class TrainStep {
  private readonly params: Map<string, tf.Variable>;
  private readonly vars: tf.Variable[];
  private readonly healthy: tf.Variable;

  constructor(private readonly cfg: StepConfig) {
    const trainable = cfg.model.getWeights().filter((w) => w.trainable);
    this.params = new Map(trainable.map((w) => [w.name, w.tensor as tf.Variable]));
    this.vars = [...this.params.values()];
    const t = tf.scalar(true, 'bool');
    this.healthy = tf.variable(t, false);
    // The variable holds its own reference to the data (as Adam's moments do).
    t.dispose();
  }

  /** Update number `step + 1` on batch `x0`; the loss closure is evaluated under the gradient tape. */
  run(x0: tf.Tensor, step: number, loss: () => tf.Scalar): StepStats {
    const { value, grads } = this.gradients(loss);
    const lr = warmupLr(this.cfg.lr, this.cfg.warmup, step + 1);
    try {
      const byName = new Map<string, tf.Tensor>();
      for (const [name, v] of this.params) if (grads[v.name]) byName.set(name, grads[v.name]);
      const { stats, ok, scale } = tf.tidy(() => {
        const norm = globalNorm([...byName.values()]);
        const batchOk = tf.all(tf.isFinite(x0));
        const finite = tf.logicalAnd(batchOk, tf.logicalAnd(tf.isFinite(value), tf.isFinite(norm)));
        const out: Record<string, tf.Tensor> = {
          stats: tf.stack([value, norm, tf.cast(batchOk, 'float32')]),
          ok: tf.logicalAnd(this.healthy, finite),
        };
        if (this.cfg.gradClip !== null) out.scale = clipCoefficientT(norm as tf.Scalar, this.cfg.gradClip);
        return out;
      }) as { stats: tf.Tensor1D; ok: tf.Scalar; scale?: tf.Scalar };
      this.healthy.assign(ok);
      this.cfg.adam.update(this.params, byName, lr, scale ?? 1, ok);
      this.cfg.ema.update(this.cfg.model);
      tf.dispose([ok, scale ?? []]);
      return { stats, lr };
    } finally {
      tf.dispose([value, grads]);
    }
  }

  /**
   * tf.variableGrads over the loss closure, with the failures a custom loss can cause turned into one SbmError and
   * no tensor left behind: tfjs keeps the tape's saved tensors when the closure throws (withGradientCleanup frees
   * them), and leaks the loss value when it is not a scalar or does not depend on the weights.
   */
  private gradients(loss: () => tf.Scalar): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    let out: tf.Tensor | undefined;
    const checked = (): tf.Scalar => {
      const v = loss() as unknown;
      if (!(v instanceof tf.Tensor) || v.isDisposed || v.rank !== 0) {
        const got = v instanceof tf.Tensor && v.isDisposed ? 'a disposed tensor' : describeValue(v);
        throw new SbmError(
          'INVALID_ARGUMENT',
          `loss: expected the loss function to return a scalar tf.Tensor, got ${got}`,
          {
            argument: 'loss',
          },
        );
      }
      out = v;
      return v as tf.Scalar;
    };
    try {
      return withGradientCleanup(() => tf.variableGrads(checked, this.vars));
    } catch (e) {
      if (out && !out.isDisposed) out.dispose();
      if (
        out &&
        e instanceof Error &&
        !(e instanceof SbmError) &&
        /Cannot (compute|find a connection)/.test(e.message)
      ) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          "loss: the loss does not depend on the model's trainable weights (no gradient reaches them)",
          { argument: 'loss' },
          { cause: e },
        );
      }
      throw e;
    }
  }

  /** Stops every later update (a step that threw NON_FINITE before it could be flagged on the device). */
  markBad(): void {
    tf.tidy(() => this.healthy.assign(tf.scalar(false, 'bool')));
  }

  dispose(): void {
    this.healthy.dispose();
  }
}
