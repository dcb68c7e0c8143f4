import * as tf from '@tensorflow/tfjs';
import { SbmError, checkTensor, describeValue, seedStream, type SeedStream } from '@sbm/core';
import { ParamStore, type NamedWeight } from './params';

/** Plain-JSON model configuration: `{ "name": "scorenet", "imageSize": 28, ... }`. */
export interface ModelConfig {
  name: string;
  [key: string]: unknown;
}

export interface ApplyOptions {
  /** Training mode: dropout is active (needs `seed` when the model has dropout > 0). Default false. */
  training?: boolean;
  /** Seed of the dropout masks (one draw per dropout layer, in forward order). */
  seed?: number | SeedStream;
}

/** What the forward pass sees besides its inputs. */
export interface ForwardContext {
  training: boolean;
  /** Seed for the next dropout mask; only called in training mode. */
  nextSeed: () => number;
}

/**
 * A score network: tf.Variables held in a ParamStore plus a pure forward function. `apply(x, cond)` is safe inside
 * tf.tidy and tf.variableGrads; nothing is cached between calls, so it never leaks.
 *
 * `cond` is the conditioning scalar per sample: what it means (t, 999·t, σ) is decided by the score wrapper
 * (`createScoreFn`), as in score_sde's mutils.get_score_fn.
 */
export abstract class ScoreModel<C extends ModelConfig = ModelConfig> {
  /** Registry name, equal to `toConfig().name`. */
  abstract readonly name: string;
  /** Shape of one sample, e.g. [28, 28, 1] or [2]. */
  abstract readonly sampleShape: readonly number[];
  /** Dropout rate; > 0 requires a seed in training mode. */
  readonly dropoutRate: number = 0;
  protected readonly params: ParamStore;
  private disposed = false;

  constructor(
    protected readonly config: C,
    seed: number | SeedStream,
  ) {
    this.params = new ParamStore(seed);
  }

  /** The plain-JSON config that rebuilds this architecture with `modelFromConfig` (weights are separate). */
  toConfig(): C {
    return JSON.parse(JSON.stringify(this.config)) as C;
  }

  /** Runs the network on a batch x [B, ...sampleShape] with conditioning cond [B]. Returns [B, ...sampleShape]. */
  apply(x: tf.Tensor, cond: tf.Tensor1D, opts: ApplyOptions = {}): tf.Tensor {
    this.checkAlive();
    checkTensor(x, 'x', [null, ...this.sampleShape]);
    checkTensor(cond, 'cond', [x.shape[0]]);
    const training = opts.training === true;
    if (training && this.dropoutRate > 0 && opts.seed === undefined) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `seed: expected a seed for the dropout masks in training mode (dropout ${this.dropoutRate}), got undefined`,
        { argument: 'seed' },
      );
    }
    const stream = opts.seed === undefined ? undefined : seedStream(opts.seed);
    const ctx: ForwardContext = { training, nextSeed: () => stream!.next() };
    return tf.tidy(() => this.forward(x, cond, ctx));
  }

  protected abstract forward(x: tf.Tensor, cond: tf.Tensor1D, ctx: ForwardContext): tf.Tensor;

  /** Every weight, trainable or not, in a fixed order, by name. The tensors are the live variables: do not dispose. */
  getWeights(): NamedWeight[] {
    this.checkAlive();
    return this.params.list();
  }

  /** Weight names in `getWeights()` order. */
  weightNames(): string[] {
    return this.getWeights().map((w) => w.name);
  }

  /** The variables an optimizer trains (pass them to tf.variableGrads / optimizer.minimize). */
  trainableVariables(): tf.Variable[] {
    return this.getWeights()
      .filter((w) => w.trainable)
      .map((w) => w.tensor as tf.Variable);
  }

  /** Number of scalar parameters (trainable only by default, as PyTorch counts requires_grad parameters). */
  countParams(opts: { includeFixed?: boolean } = {}): number {
    return this.getWeights()
      .filter((w) => w.trainable || opts.includeFixed)
      .reduce((n, w) => n + w.tensor.size, 0);
  }

  /**
   * Copies weights in by name (a list like getWeights() or a tf.io.NamedTensorMap). The given tensors are not
   * consumed. With `strict` (default) every weight of the model must be given; unknown names always throw.
   */
  setWeights(
    weights: readonly { name: string; tensor: tf.Tensor }[] | tf.NamedTensorMap,
    opts: { strict?: boolean } = {},
  ): void {
    this.checkAlive();
    const entries: [string, tf.Tensor][] = Array.isArray(weights)
      ? (weights as { name: string; tensor: tf.Tensor }[]).map((w) => [w.name, w.tensor])
      : Object.entries(weights as tf.NamedTensorMap);
    const own = new Map(this.params.list().map((w) => [w.name, w.tensor as tf.Variable]));
    const seen = new Set<string>();
    for (const [name, tensor] of entries) {
      const v = own.get(name);
      if (!v) {
        throw new SbmError('UNKNOWN_NAME', `weights: "${name}" is not a weight of this ${this.name} model`, {
          argument: 'weights',
          received: name,
        });
      }
      checkTensor(tensor, `weights["${name}"]`, v.shape);
      seen.add(name);
    }
    if (opts.strict !== false) {
      const missing = [...own.keys()].filter((n) => !seen.has(n));
      if (missing.length > 0) {
        throw new SbmError(
          'CONFIG_MISMATCH',
          `weights: missing ${missing.length} weight(s) of this ${this.name} model: ${missing.slice(0, 5).join(', ')}${
            missing.length > 5 ? ', ...' : ''
          }`,
          { argument: 'weights', missing },
        );
      }
    }
    for (const [name, tensor] of entries) {
      const v = own.get(name)!;
      tf.tidy(() => v.assign(tensor.dtype === 'float32' ? tensor : tf.cast(tensor, 'float32')));
    }
  }

  /** Frees every variable. The model is unusable afterwards. */
  dispose(): void {
    this.params.dispose();
    this.disposed = true;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private checkAlive(): void {
    if (this.disposed) {
      throw new SbmError('INVALID_ARGUMENT', `model: this ${this.name} model has been disposed`);
    }
  }
}

// ---- config helpers shared by the model files ------------------------------------------------------------------

/** Rejects keys that are not options of `model` (typos in JSON configs would otherwise be silently ignored). */
export function checkKeys(cfg: Record<string, unknown>, allowed: string[], model: string): void {
  for (const key of Object.keys(cfg)) {
    if (key !== 'name' && !allowed.includes(key)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `model.${key}: not an option of the "${model}" model (expected one of ${allowed.join(', ')})`,
        { argument: `model.${key}`, expected: allowed },
      );
    }
  }
}

export function checkIntList(value: unknown, name: string, opts: { min?: number; nonEmpty?: boolean } = {}): number[] {
  const ok =
    Array.isArray(value) &&
    (!opts.nonEmpty || value.length > 0) &&
    value.every((v) => Number.isInteger(v) && (opts.min === undefined || v >= opts.min));
  if (!ok) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected a${opts.nonEmpty ? ' non-empty' : 'n'} array of integers${
        opts.min !== undefined ? ` >= ${opts.min}` : ''
      }, got ${describeValue(value)}`,
      { argument: name, received: value },
    );
  }
  return [...(value as number[])];
}

export function checkBool(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected true or false, got ${describeValue(value)}`, {
      argument: name,
    });
  }
  return value;
}
