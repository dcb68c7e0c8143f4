import * as tf from '@tensorflow/tfjs';
import { FUSED_EMA, SbmError, checkNumber } from '@sbm/core';
import type { ScoreModel } from './model';
import type { NamedWeight } from './params';

export interface EmaOptions {
  /** Target decay (score_sde: 0.999 for VE, 0.9999 for VP). */
  decay: number;
  /** Warm up as PyTorch score_sde does: decay_n = min(decay, (1 + n)/(10 + n)) at the n-th update. Default true. */
  warmup?: boolean;
}

/**
 * Exponential moving average of a model's trainable weights (score_sde_pytorch models/ema.py): at update n
 * (counted from 1) shadow ← shadow − (1 − d_n)(shadow − param), d_n = min(decay, (1 + n)/(10 + n)) with warm-up.
 * Shadows are non-trainable tf.Variables keyed by the model's weight names, so they can be checkpointed by name.
 */
export class ExponentialMovingAverage {
  readonly decay: number;
  readonly warmup: boolean;
  private n = 0;
  private readonly shadow = new Map<string, tf.Variable>();
  private stored: Map<string, tf.Tensor> | undefined;

  constructor(model: ScoreModel, opts: EmaOptions) {
    this.decay = checkNumber(opts.decay, 'decay', { min: 0, max: 1 });
    this.warmup = opts.warmup ?? true;
    for (const w of model.getWeights()) {
      // A variable shares the (immutable) data of its initial value; later assigns to either side do not alias.
      if (w.trainable) this.shadow.set(w.name, tf.variable(w.tensor, false));
    }
  }

  /** Number of updates so far. */
  get numUpdates(): number {
    return this.n;
  }

  /** The decay the next update will use. */
  nextDecay(): number {
    const n = this.n + 1;
    return this.warmup ? Math.min(this.decay, (1 + n) / (10 + n)) : this.decay;
  }

  /** Moves the shadows toward the model's current weights. Call after each optimizer step. */
  update(model: ScoreModel): void {
    const d = this.nextDecay();
    const params = this.trainable(model);
    tf.tidy(() => {
      if (this.shadow.size > 0 && tf.getKernel(FUSED_EMA, tf.getBackend()) !== undefined) {
        // One kernel call for every shadow (@sbm/wasm-kernels on wasm), bit-identical to the loop below: the same
        // float32 operations in the same order.
        const shadows = [...this.shadow];
        const inputs: tf.NamedTensorMap = {};
        shadows.forEach(([name, s], i) => {
          inputs[`s${i}`] = s;
          inputs[`p${i}`] = params.get(name)!;
        });
        const attrs = { count: shadows.length, weight: 1 - d };
        const out = tf.engine().runKernel(FUSED_EMA, inputs, attrs as never) as tf.Tensor[];
        shadows.forEach(([, s], i) => s.assign(out[i]));
        return;
      }
      for (const [name, s] of this.shadow) s.assign(tf.sub(s, tf.mul(tf.sub(s, params.get(name)!), 1 - d)));
    });
    this.n += 1;
  }

  /** Writes the averaged weights into `model`. */
  copyTo(model: ScoreModel): void {
    const params = this.trainable(model);
    for (const [name, s] of this.shadow) (params.get(name) as tf.Variable).assign(s);
  }

  /** Saves the model's current trainable weights (e.g. before `copyTo` for an evaluation with EMA weights). */
  store(model: ScoreModel): void {
    this.disposeStored();
    const params = this.trainable(model);
    this.stored = new Map([...params].map(([name, v]) => [name, v.clone()]));
  }

  /** Puts back the weights saved by `store` (and frees the copy). */
  restore(model: ScoreModel): void {
    if (!this.stored) throw new SbmError('INVALID_ARGUMENT', 'ema.restore: nothing stored (call store(model) first)');
    const params = this.trainable(model);
    for (const [name, t] of this.stored) (params.get(name) as tf.Variable).assign(t);
    this.disposeStored();
  }

  /** The shadow weights by name (live variables: do not dispose). */
  getWeights(): NamedWeight[] {
    return [...this.shadow].map(([name, tensor]) => ({ name, tensor, trainable: false }));
  }

  /** Loads shadows (from a checkpoint) and the update count. */
  setWeights(weights: readonly { name: string; tensor: tf.Tensor }[], numUpdates: number): void {
    checkNumber(numUpdates, 'numUpdates', { integer: true, min: 0 });
    const given = new Map(weights.map((w) => [w.name, w.tensor]));
    for (const name of given.keys()) {
      if (!this.shadow.has(name)) {
        throw new SbmError('UNKNOWN_NAME', `weights: "${name}" is not an averaged weight`, { argument: 'weights' });
      }
    }
    for (const [name, s] of this.shadow) {
      const t = given.get(name);
      if (!t)
        throw new SbmError('CONFIG_MISMATCH', `weights: missing the averaged weight "${name}"`, {
          argument: 'weights',
        });
      if (t.shape.join() !== s.shape.join()) {
        throw new SbmError('INVALID_SHAPE', `weights["${name}"]: expected shape [${s.shape}], got [${t.shape}]`);
      }
    }
    for (const [name, s] of this.shadow) s.assign(given.get(name)!);
    this.n = numUpdates;
  }

  /** Plain-JSON state besides the tensors. */
  toJSON(): { decay: number; warmup: boolean; numUpdates: number } {
    return { decay: this.decay, warmup: this.warmup, numUpdates: this.n };
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
    this.shadow.clear();
    this.disposeStored();
  }

  private disposeStored(): void {
    if (this.stored) for (const t of this.stored.values()) t.dispose();
    this.stored = undefined;
  }

  private trainable(model: ScoreModel): Map<string, tf.Variable> {
    const params = new Map(
      model
        .getWeights()
        .filter((w) => w.trainable)
        .map((w) => [w.name, w.tensor as tf.Variable]),
    );
    for (const [name, s] of this.shadow) {
      const p = params.get(name);
      if (!p || p.shape.join() !== s.shape.join()) {
        throw new SbmError(
          'CONFIG_MISMATCH',
          `model: its weight "${name}" is missing or has another shape than the EMA's`,
          {
            argument: 'model',
          },
        );
      }
    }
    if (params.size !== this.shadow.size) {
      throw new SbmError(
        'CONFIG_MISMATCH',
        `model: has ${params.size} trainable weights, the EMA tracks ${this.shadow.size}`,
      );
    }
    return params;
  }
}
