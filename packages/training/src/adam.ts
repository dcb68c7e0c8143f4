import * as tf from '@tensorflow/tfjs';
import { FUSED_ADAM, SbmError, checkNumber } from '@sbm/core';

export interface AdamOptions {
  /** β1 (default 0.9, score_sde config.optim.beta1). */
  beta1?: number;
  /** β2 (default 0.999). */
  beta2?: number;
  /** ε added to √v̂ (default 1e-8, score_sde config.optim.eps). */
  eps?: number;
}

/** Adam's state: the step count and the first / second moment of every trained weight, by weight name. */
export interface AdamState {
  step: number;
  m: tf.NamedTensorMap;
  v: tf.NamedTensorMap;
}

/**
 * Adam (Kingma & Ba 2015, Algorithm 1) as torch.optim.Adam computes it without weight decay:
 * m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², θ ← θ − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
 * The moments are tf.Variables keyed by the model's weight names (not tf.train.adam's engine-global variable
 * names), so the whole state can be written to a checkpoint and read back bit for bit.
 */
export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(weights: readonly { name: string; tensor: tf.Tensor }[], opts: AdamOptions = {}) {
    this.beta1 = checkNumber(opts.beta1 ?? 0.9, 'adam.beta1', { min: 0, lt: 1 });
    this.beta2 = checkNumber(opts.beta2 ?? 0.999, 'adam.beta2', { min: 0, lt: 1 });
    this.eps = checkNumber(opts.eps ?? 1e-8, 'adam.eps', { min: 0 });
    for (const w of weights) {
      const zeros = tf.zerosLike(w.tensor);
      this.m.set(w.name, tf.variable(zeros, false));
      this.v.set(w.name, tf.variable(zeros, false));
      // Each variable keeps its own reference to the data; assign() later replaces it without aliasing.
      zeros.dispose();
    }
  }

  /** Updates taken so far. */
  get step(): number {
    return this.t;
  }

  /**
   * One update of `params` (by name) with gradients `grads` (by name) multiplied by `gradScale` (the clipping
   * coefficient, a number or a scalar tensor) and learning rate `lr`. With `apply` (a boolean scalar) the weights
   * and moments change only where it is true: the trainer skips a non-finite step on the device, without reading
   * anything back. Allocates nothing that outlives the call.
   */
  update(
    params: Map<string, tf.Variable>,
    grads: Map<string, tf.Tensor>,
    lr: number,
    gradScale: number | tf.Scalar = 1,
    apply?: tf.Scalar,
  ): void {
    const t = this.t + 1;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    if (this.fusable(gradScale, apply)) {
      this.fusedUpdate(params, grads, lr / bc1, Math.sqrt(bc2), gradScale, apply);
      this.t = t;
      return;
    }
    tf.tidy(() => {
      for (const [name, p] of params) {
        const g0 = grads.get(name);
        // A weight the loss does not depend on has no gradient; torch.optim.Adam skips it (grad is None).
        if (!g0) continue;
        const g = gradScale === 1 ? g0 : tf.mul(g0, gradScale);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const mNew = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const vNew = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(vNew), Math.sqrt(bc2)), this.eps);
        const pNew = tf.sub(p, tf.mul(tf.div(mNew, denom), lr / bc1));
        // where() passes the selected operand through unchanged, so a guarded finite step is bit-identical.
        const keep = (next: tf.Tensor, old: tf.Tensor) => (apply ? tf.where(apply, next, old) : next);
        m.assign(keep(mNew, m));
        v.assign(keep(vNew, v));
        p.assign(keep(pNew, p));
      }
    });
    this.t = t;
  }

  /**
   * Whether the running backend has sbm's fused Adam kernel (@sbm/wasm-kernels registers it for wasm) and the
   * scalars have the dtypes it takes; anything else keeps the composite form (and its errors).
   */
  private fusable(gradScale: number | tf.Scalar, apply: tf.Scalar | undefined): boolean {
    if (tf.getKernel(FUSED_ADAM, tf.getBackend()) === undefined) return false;
    if (typeof gradScale !== 'number' && (gradScale.dtype !== 'float32' || gradScale.size !== 1)) return false;
    return apply === undefined || (apply.dtype === 'bool' && apply.size === 1);
  }

  /**
   * The composite update above as one kernel call over every weight (FUSED_ADAM in @sbm/core), bit-identical to it:
   * the same float32 operations in the same order, on the same float32-rounded scalars. The composite costs ~14
   * kernels per weight on wasm (the `where` guard alone Tiles `apply` to each weight's shape three times).
   */
  private fusedUpdate(
    params: Map<string, tf.Variable>,
    grads: Map<string, tf.Tensor>,
    stepSize: number,
    sqrtBc2: number,
    gradScale: number | tf.Scalar,
    apply: tf.Scalar | undefined,
  ): void {
    const names: string[] = [];
    const inputs: tf.NamedTensorMap = {};
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      if (g.shape.join() !== p.shape.join() || g.dtype !== 'float32') {
        throw new SbmError(
          'INVALID_SHAPE',
          `grads["${name}"]: expected a float32 gradient of shape [${p.shape}], got ${g.dtype} [${g.shape}]`,
          { argument: 'grads', expected: p.shape, received: g.shape },
        );
      }
      const i = names.length;
      names.push(name);
      inputs[`p${i}`] = p;
      inputs[`g${i}`] = g;
      inputs[`m${i}`] = this.m.get(name)!;
      inputs[`v${i}`] = this.v.get(name)!;
    }
    if (names.length === 0) return;
    if (typeof gradScale !== 'number') inputs.scale = gradScale;
    if (apply) inputs.apply = apply;
    const attrs = {
      count: names.length,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      stepSize,
      sqrtBc2,
      scale: typeof gradScale === 'number' ? gradScale : 1,
    };
    tf.tidy(() => {
      const out = tf.engine().runKernel(FUSED_ADAM, inputs, attrs as never) as tf.Tensor[];
      const n = names.length;
      // assign() moves a reference to the kernel's output (no copy); tidy frees the outputs' own references.
      names.forEach((name, i) => {
        params.get(name)!.assign(out[i]);
        this.m.get(name)!.assign(out[n + i]);
        this.v.get(name)!.assign(out[2 * n + i]);
      });
    });
  }

  /** The live state (do not dispose the tensors). */
  getState(): AdamState {
    return { step: this.t, m: Object.fromEntries(this.m), v: Object.fromEntries(this.v) };
  }

  /** Loads a state saved with getState (names and shapes must match). The given tensors are not consumed. */
  setState(state: AdamState): void {
    checkNumber(state.step, 'optimizerState.step', { integer: true, min: 0 });
    for (const [kind, own, given] of [
      ['m', this.m, state.m],
      ['v', this.v, state.v],
    ] as const) {
      const names = Object.keys(given);
      if (names.length !== own.size || names.some((n) => !own.has(n))) {
        throw new SbmError(
          'CONFIG_MISMATCH',
          `optimizerState.${kind}: expected the ${own.size} trained weights of the model, got ${names.length} ` +
            `entries (${
              names
                .filter((n) => !own.has(n))
                .slice(0, 3)
                .join(', ') || 'some missing'
            })`,
          { argument: `optimizerState.${kind}` },
        );
      }
      for (const [name, variable] of own) {
        if (given[name].shape.join() !== variable.shape.join()) {
          throw new SbmError(
            'CONFIG_MISMATCH',
            `optimizerState.${kind}["${name}"]: expected shape [${variable.shape}], got [${given[name].shape}]`,
          );
        }
      }
    }
    for (const [name, variable] of this.m) variable.assign(state.m[name]);
    for (const [name, variable] of this.v) variable.assign(state.v[name]);
    this.t = state.step;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** √(Σ‖g‖²) over every gradient (torch.nn.utils.clip_grad_norm_'s total 2-norm). */
export function globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

/**
 * clip_grad_norm_'s scale: gradients are multiplied by min(1, maxNorm / (norm + 1e-6)) (score_sde_pytorch
 * losses.optimization_manager with config.optim.grad_clip).
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * clipCoefficient on the device (the trainer's form: no readback of the norm). In float32 throughout, so it can
 * differ from the float64 host form in the last bit when clipping engages.
 */
export function clipCoefficientT(norm: tf.Scalar, maxNorm: number): tf.Scalar {
  return tf.tidy(() => tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)))) as tf.Scalar;
}

/**
 * score_sde's linear warm-up: lr · min(step / warmup, 1). The reference passes the 0-based step, so its first update
 * has lr 0 and only moves Adam's moments; here `step` counts updates from 1, so the first update already moves
 * the weights (the schedule is the reference's shifted by one step).
 */
export function warmupLr(lr: number, warmup: number, step: number): number {
  return warmup > 0 ? lr * Math.min(step / warmup, 1) : lr;
}
