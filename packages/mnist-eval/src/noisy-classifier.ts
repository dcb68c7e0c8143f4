import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkNumber, checkSeed, checkTensor, describeValue, yieldToEventLoop } from '@sbm/core';
import { decodeSafetensors, encodeSafetensors } from '@sbm/safetensors';
import { NUM_CLASSES, checkParamShapes } from './model';

/**
 * The noise-conditional MNIST classifier p_t(c | x_t) for class guidance (Song et al. 2021, "Score-based generative
 * modeling through SDEs", App. I.1: a classifier trained on perturbed data and conditioned on the noise level; the
 * JAX get_pc_conditional_sampler adds ∇ₓ log softmax(classifier(x_t, σ_t))[y] to the score).
 *
 * Input x_t = x₀ + σ·z with x₀ in [0, 1] (the space of the tutorial-VE ScoreNet; α = 1), σ = σ(t) > 0 or given
 * directly. Network:
 *   x_in = (x_t − μ) / √(s² + σ²)                  (μ, s: MNIST pixel mean / std; unit-variance input at every σ,
 *                                                   the c_in of Karras et al. 2022, eq. 7 — see "why" below)
 *   e    = swish(W₂ swish(W₁ [ℓ/4, sin(ωₖ ℓ), cos(ωₖ ℓ)]))   ℓ = ln max(σ, σ_floor), ωₖ = 2^{k−3}, k = 0..5
 *   conv 3×3 (1→8, valid) → FiLM(e) → ReLU → max-pool 2
 *   conv 3×3 (8→16, valid) → FiLM(e) → ReLU → max-pool 2
 *   conv 3×3 (16→32, valid) → FiLM(e) → ReLU → flatten (3·3·32 = 288) → dense 64 → ReLU → dense 10 (logits)
 * with FiLM(e): h ← h ⊙ (1 + γ(e)) + β(e) per channel (Perez et al. 2018), γ, β linear in e and zero at init.
 *
 * Deviations from score_sde's classifier (wideresnet_noise_conditional: a 28-layer Wide-ResNet with a Gaussian-Fourier
 * embedding of log σ at scale 16 added as a bias): a 3-conv CNN of 37,370 parameters (≈ 0.23 M multiply-adds per image) so that
 * its gradient costs little next to the ScoreNet, and so that it trains within minutes on a shared 2-core machine; a fixed sinusoidal embedding at low frequencies (σ spans ~10 octaves here; scale-16 random
 * frequencies would make a small network's output jitter in σ); FiLM instead of a bias only; and the c_in input
 * scaling, without which the first conv would have to handle inputs whose scale varies by 10⁴ across σ.
 */

/** Embedding width, hidden width of the head. */
const EMBED_DIM = 64;
const HIDDEN = 64;
/** Frequencies ωₖ = 2^{k−3}, k = 0..5 (periods 50 down to 1.6 in units of ln σ). */
const FREQS = [0.125, 0.25, 0.5, 1, 2, 4];
const EMBED_IN = 1 + 2 * FREQS.length;
/**
 * ln σ is taken at max(σ, NOISY_SIGMA_FLOOR): σ = 0 (clean images) is then treated like σ = 0.01 (a quarter of one
 * 8-bit grey level, visually the same), which keeps ln σ inside the range training covers (σ(1e-5) ≈ 0.003).
 */
export const NOISY_SIGMA_FLOOR = 1e-2;
/** MNIST train-set pixel mean and std (in [0, 1]); the input map divides by √(s² + σ²), the std of x_t. */
const DATA_MEAN = 0.1307;
const DATA_STD = 0.3081;

/** Channels of the three convolutions. */
const CHANNELS = [8, 16, 32] as const;
/** 28 → conv 26 → pool 13 → conv 11 → pool 5 → conv 3: 3·3·C₃ features into the head. */
const FLAT = 3 * 3 * CHANNELS[2];

export const NOISY_PARAM_SHAPES: Readonly<Record<string, readonly number[]>> = {
  'embed1.weight': [EMBED_IN, EMBED_DIM],
  'embed1.bias': [EMBED_DIM],
  'embed2.weight': [EMBED_DIM, EMBED_DIM],
  'embed2.bias': [EMBED_DIM],
  'conv1.weight': [3, 3, 1, CHANNELS[0]],
  'conv1.bias': [CHANNELS[0]],
  'film1.weight': [EMBED_DIM, 2 * CHANNELS[0]],
  'film1.bias': [2 * CHANNELS[0]],
  'conv2.weight': [3, 3, CHANNELS[0], CHANNELS[1]],
  'conv2.bias': [CHANNELS[1]],
  'film2.weight': [EMBED_DIM, 2 * CHANNELS[1]],
  'film2.bias': [2 * CHANNELS[1]],
  'conv3.weight': [3, 3, CHANNELS[1], CHANNELS[2]],
  'conv3.bias': [CHANNELS[2]],
  'film3.weight': [EMBED_DIM, 2 * CHANNELS[2]],
  'film3.bias': [2 * CHANNELS[2]],
  'fc1.weight': [FLAT, HIDDEN],
  'fc1.bias': [HIDDEN],
  'fc2.weight': [HIDDEN, NUM_CLASSES],
  'fc2.bias': [NUM_CLASSES],
};

export const NOISY_PARAM_NAMES = Object.keys(NOISY_PARAM_SHAPES);

export type NoisyClassifierParams = Record<string, tf.Tensor>;

/** The format tag written into the safetensors metadata and checked on load. */
export const NOISY_FORMAT = 'sbm-mnist-noisy-classifier-v1';

/**
 * Seeded initialization: He-normal N(0, 2/fan_in) for the ReLU/swish layers (He et al. 2015, eq. 10), N(0, 1/fan_in)
 * for the logits, zero biases, and zero FiLM weights so that the untrained network starts as the plain CNN and
 * the noise conditioning is learnt as a perturbation of it. Same seed ⇒ same numbers on every backend.
 */
export function initNoisyParams(seed: number): NoisyClassifierParams {
  const stream = new SeedStream(checkSeed(seed, 'initNoisyParams: seed'));
  const params: NoisyClassifierParams = {};
  for (const name of NOISY_PARAM_NAMES) {
    const shape = [...NOISY_PARAM_SHAPES[name]];
    // One draw per tensor in a fixed order, zero tensors included, so adding a layer never reshuffles the others.
    const s = stream.next();
    if (name.endsWith('.bias') || name.startsWith('film')) {
      params[name] = tf.zeros(shape);
      continue;
    }
    const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const gain = name === 'fc2.weight' ? 1 : 2;
    params[name] = tf.randomNormal(shape, 0, Math.sqrt(gain / fanIn), 'float32', s);
  }
  return params;
}

/** Checks that `params` holds every parameter as float32 with the expected shape (CORRUPT_CHECKPOINT otherwise). */
export function checkNoisyParams(params: Record<string, tf.Tensor>, source: string): void {
  checkParamShapes(params, NOISY_PARAM_SHAPES, source);
}

const swish = (x: tf.Tensor): tf.Tensor => tf.mul(x, tf.sigmoid(x));

/**
 * Logits [B, 10] of x_t [B, 28, 28, 1] at noise levels sigma [B] (σ ≥ 0; the marginal std of x_t around x₀).
 * Plain differentiable tfjs ops (no validation: see NoisyMnistClassifier.logits). Call inside tf.tidy.
 */
export function noisyForward(params: NoisyClassifierParams, x: tf.Tensor4D, sigma: tf.Tensor1D): tf.Tensor2D {
  const p = (name: string) => params[name];
  const b = x.shape[0];
  const ell = tf.log(tf.maximum(sigma, NOISY_SIGMA_FLOOR)).reshape([b, 1]);
  const arg = tf.mul(ell, tf.tensor2d(FREQS, [1, FREQS.length]));
  const emb0 = tf.concat([tf.div(ell, 4), tf.sin(arg), tf.cos(arg)], 1);
  let e = swish(tf.add(tf.matMul(emb0, p('embed1.weight') as tf.Tensor2D), p('embed1.bias')));
  e = swish(tf.add(tf.matMul(e as tf.Tensor2D, p('embed2.weight') as tf.Tensor2D), p('embed2.bias')));
  const block = (h: tf.Tensor4D, i: number, channels: number): tf.Tensor4D => {
    const conv = tf.add(tf.conv2d(h, p(`conv${i}.weight`) as tf.Tensor4D, 1, 'valid'), p(`conv${i}.bias`));
    const film = tf.add(tf.matMul(e as tf.Tensor2D, p(`film${i}.weight`) as tf.Tensor2D), p(`film${i}.bias`));
    const [gamma, beta] = tf.split(film, [channels, channels], 1);
    const g = tf.reshape(tf.add(gamma, 1), [b, 1, 1, channels]);
    const s = tf.reshape(beta, [b, 1, 1, channels]);
    return tf.relu(tf.add(tf.mul(conv, g), s)) as tf.Tensor4D;
  };
  // c_in = 1/√(s² + σ²): x_t has per-pixel std ≈ √(s² + σ²) around the data mean at every noise level.
  const cIn = tf.rsqrt(tf.add(tf.square(sigma), DATA_STD * DATA_STD)).reshape([b, 1, 1, 1]);
  let h = tf.mul(tf.sub(x, DATA_MEAN), cIn) as tf.Tensor4D;
  h = tf.maxPool(block(h, 1, CHANNELS[0]), 2, 2, 'valid');
  h = tf.maxPool(block(h, 2, CHANNELS[1]), 2, 2, 'valid');
  h = block(h, 3, CHANNELS[2]);
  const flat = tf.reshape(h, [b, -1]) as tf.Tensor2D;
  const hidden = tf.relu(tf.add(tf.matMul(flat, p('fc1.weight') as tf.Tensor2D), p('fc1.bias'))) as tf.Tensor2D;
  return tf.add(tf.matMul(hidden, p('fc2.weight') as tf.Tensor2D), p('fc2.bias')) as tf.Tensor2D;
}

/**
 * What the classifier needs from an SDE: the marginal std σ(t) of x_t given x₀ and its mean scale α(t) (which must be
 * 1: the weights were trained in the VE space x_t = x₀ + σ(t) z). Every @sbm/sde Sde qualifies.
 */
export interface NoisyClassifierSde {
  stdT(t: tf.Tensor1D): tf.Tensor1D;
  std(t: number): number;
  alpha?(t: number): number;
  name?: string;
}

/** The tutorial VE SDE's σ(t) = √((σ^{2t} − 1)/(2 ln σ)) (Song's MNIST tutorial; @sbm/sde TutorialVeSde). */
export function tutorialVeStd(sigma: number): NoisyClassifierSde {
  const twoLog = 2 * Math.log(sigma);
  return {
    name: 'tutorial-ve',
    std: (t) => Math.sqrt(Math.expm1(twoLog * t) / twoLog),
    stdT: (t) => tf.tidy(() => tf.sqrt(tf.div(tf.expm1(tf.mul(t, twoLog)), twoLog))) as tf.Tensor1D,
    alpha: () => 1,
  };
}

export interface NoisyClassifierOptions {
  /**
   * The SDE whose times `logits(x, t)` receive (default: the tutorial VE SDE with the σ recorded in the weights'
   * metadata, 25 for the shipped file — the SDE of the ScoreNet in /work/mnist-eval/ckpt). Must have α(t) = 1.
   */
  sde?: NoisyClassifierSde;
}

export interface NoisyAccuracyOptions {
  /** Images per forward pass (default 500). */
  batchSize?: number;
}

function checkSdeArg(sde: unknown, name: string): NoisyClassifierSde {
  const s = sde as NoisyClassifierSde;
  if (s === null || typeof s !== 'object' || typeof s.stdT !== 'function' || typeof s.std !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected an SDE with stdT(t) and std(t) (e.g. new TutorialVeSde({ sigma: 25 })), got ${describeValue(sde)}`,
      { argument: name },
    );
  }
  if (typeof s.alpha === 'function') {
    for (const t of [0.5, 1]) {
      const a = s.alpha(t);
      if (Math.abs(a - 1) > 1e-6) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `${name}: expected a variance-exploding SDE (α(t) = 1: the classifier was trained on x_t = x₀ + σ(t) z), got α(${t}) = ${a}${s.name ? ` for '${s.name}'` : ''}`,
          { argument: name },
        );
      }
    }
  }
  return s;
}

/**
 * The noise-conditional MNIST classifier (architecture above). Holds its weights as tensors: call dispose() when
 * done. `logits` is a TimeClassifierFn for @sbm/inverse-problems' 'guidance' method.
 */
export class NoisyMnistClassifier {
  readonly sde: NoisyClassifierSde;
  /** Metadata stored with the weights (per-σ test accuracy, seed, steps, SDE, date, tfjs version, ...). */
  readonly metadata: Readonly<Record<string, string>>;
  private readonly params: NoisyClassifierParams;
  private isDisposed = false;

  /** Takes ownership of `params` (the tensors named in NOISY_PARAM_SHAPES). */
  constructor(params: NoisyClassifierParams, metadata: Record<string, string> = {}, opts: NoisyClassifierOptions = {}) {
    if (opts === null || typeof opts !== 'object') {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `NoisyMnistClassifier: opts: expected an object, got ${describeValue(opts)}`,
      );
    }
    checkNoisyParams(params, 'NoisyMnistClassifier');
    this.params = params;
    this.metadata = { ...metadata };
    const sdeSigma = Number(metadata.sdeSigma ?? 25);
    this.sde =
      opts.sde === undefined
        ? tutorialVeStd(Number.isFinite(sdeSigma) && sdeSigma > 1 ? sdeSigma : 25)
        : checkSdeArg(opts.sde, 'NoisyMnistClassifier: sde');
    // Bound so it can be passed as a plain function (TimeClassifierFn) without losing `this`.
    this.logits = this.logits.bind(this);
    this.logitsAtSigma = this.logitsAtSigma.bind(this);
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  dispose(): void {
    if (this.isDisposed) return;
    tf.dispose(Object.values(this.params));
    this.isDisposed = true;
  }

  private ensureAlive(method: string): void {
    if (this.isDisposed) {
      throw new SbmError('INVALID_ARGUMENT', `NoisyMnistClassifier.${method}: the classifier has been disposed`);
    }
  }

  /** Shape/dtype checks only (no read-back): these run on every sampler step. */
  private checkX(x: unknown, method: string): tf.Tensor4D {
    const name = `NoisyMnistClassifier.${method}: x`;
    const t = checkTensor(x, name, [null, 28, 28, 1], { nonEmpty: true }) as tf.Tensor4D;
    if (t.dtype !== 'float32') {
      throw new SbmError('INVALID_ARGUMENT', `${name}: expected a float32 tensor, got ${t.dtype}`, { argument: name });
    }
    return t;
  }

  /** A number or a [b] / [1] tensor of times or σs → a float32 [b] tensor (the caller's tensor is not disposed). */
  private perSample(v: unknown, b: number, name: string, rule: { gt?: number; min?: number }): tf.Tensor1D {
    if (typeof v === 'number') {
      checkNumber(v, name, rule);
      return tf.fill([b], v) as tf.Tensor1D;
    }
    const t = checkTensor(v, name, undefined, {}) as tf.Tensor;
    if (t.rank !== 1 || (t.shape[0] !== b && t.shape[0] !== 1)) {
      throw new SbmError(
        'INVALID_SHAPE',
        `${name}: expected a number or a tensor of shape [${b}] (or [1]), got shape [${t.shape.join(', ')}]`,
        { argument: name, expected: [b], received: t.shape },
      );
    }
    return tf.tidy(() => tf.broadcastTo(tf.cast(t, 'float32'), [b])) as tf.Tensor1D;
  }

  /**
   * Logits [b, 10] of p_t(c | x_t) for x_t [b, 28, 28, 1] at times t (a [b] or [1] tensor, or a number; σ = sde.std(t)).
   * Differentiable w.r.t. x (tf.grad / tf.valueAndGrad); leak-free outside tidy; no read-back.
   * Usable as @sbm/inverse-problems' TimeClassifierFn.
   */
  logits(x: tf.Tensor, t: tf.Tensor1D | number): tf.Tensor2D {
    this.ensureAlive('logits');
    const x4 = this.checkX(x, 'logits');
    const tt = this.perSample(t, x4.shape[0], 'NoisyMnistClassifier.logits: t', { gt: 0 });
    try {
      return tf.tidy(() => noisyForward(this.params, x4, this.sde.stdT(tt)));
    } finally {
      tt.dispose();
    }
  }

  /** Logits [b, 10] at noise levels σ ≥ 0 given directly (a number or a [b] / [1] tensor), e.g. σ = 0 for clean digits. */
  logitsAtSigma(x: tf.Tensor, sigma: tf.Tensor1D | number): tf.Tensor2D {
    this.ensureAlive('logitsAtSigma');
    const x4 = this.checkX(x, 'logitsAtSigma');
    const s = this.perSample(sigma, x4.shape[0], 'NoisyMnistClassifier.logitsAtSigma: sigma', { min: 0 });
    try {
      return tf.tidy(() => noisyForward(this.params, x4, s));
    } finally {
      s.dispose();
    }
  }

  /** Fraction of x_t [N, 28, 28, 1] (already noised, at times t) classified as `labels` [N] (int32 or float). */
  async accuracy(
    xt: tf.Tensor,
    t: tf.Tensor1D | number,
    labels: tf.Tensor1D,
    opts: NoisyAccuracyOptions = {},
  ): Promise<number> {
    return this.countCorrect(xt, t, labels, opts, 'accuracy', (x, v) => this.logits(x, v));
  }

  /** As accuracy(), with the noise levels σ given directly. */
  async accuracyAtSigma(
    xt: tf.Tensor,
    sigma: tf.Tensor1D | number,
    labels: tf.Tensor1D,
    opts: NoisyAccuracyOptions = {},
  ): Promise<number> {
    return this.countCorrect(xt, sigma, labels, opts, 'accuracyAtSigma', (x, v) => this.logitsAtSigma(x, v));
  }

  private async countCorrect(
    xt: tf.Tensor,
    level: tf.Tensor1D | number,
    labels: tf.Tensor1D,
    opts: NoisyAccuracyOptions,
    method: string,
    fn: (x: tf.Tensor4D, v: tf.Tensor1D | number) => tf.Tensor2D,
  ): Promise<number> {
    this.ensureAlive(method);
    if (opts === null || typeof opts !== 'object') {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `NoisyMnistClassifier.${method}: opts: expected an object, got ${describeValue(opts)}`,
      );
    }
    const x = this.checkX(xt, method);
    const n = x.shape[0];
    checkTensor(labels, `NoisyMnistClassifier.${method}: labels`, [n]);
    const batchSize = checkNumber(opts.batchSize ?? 500, `NoisyMnistClassifier.${method}: batchSize`, {
      integer: true,
      min: 1,
    });
    const levelName = `NoisyMnistClassifier.${method}: ${method === 'accuracy' ? 't' : 'sigma'}`;
    const all = this.perSample(level, n, levelName, method === 'accuracy' ? { gt: 0 } : { min: 0 });
    let correct = 0;
    try {
      for (let start = 0; start < n; start += batchSize) {
        const size = Math.min(batchSize, n - start);
        const hits = tf.tidy(() => {
          const xb = tf.slice(x, [start, 0, 0, 0], [size, 28, 28, 1]);
          const lb = tf.slice(all, [start], [size]);
          const pred = tf.argMax(fn(xb, lb), 1);
          return tf.sum(tf.cast(tf.equal(pred, tf.cast(tf.slice(labels, [start], [size]), 'int32')), 'int32'));
        });
        correct += (await hits.data())[0];
        hits.dispose();
        if (start + batchSize < n) await yieldToEventLoop();
      }
    } finally {
      all.dispose();
    }
    return correct / n;
  }

  /** The weights as a safetensors file (float32), with this classifier's metadata plus `extra`. */
  toSafetensors(extra: Record<string, string> = {}): Uint8Array {
    this.ensureAlive('toSafetensors');
    return encodeSafetensors(
      NOISY_PARAM_NAMES.map((name) => ({ name, tensor: this.params[name] })),
      { ...this.metadata, ...extra, format: NOISY_FORMAT },
    );
  }
}

/**
 * Builds the noise-conditional classifier from the bytes of a safetensors file written by `toSafetensors` / the
 * training script (node: `loadDefaultNoisyClassifier()` from `@sbm/mnist-eval/node`; browser: fetch
 * `@sbm/mnist-eval/weights/noisy-classifier.safetensors`). Malformed files → CORRUPT_CHECKPOINT.
 */
export function loadNoisyClassifier(bytes: Uint8Array, opts: NoisyClassifierOptions = {}): NoisyMnistClassifier {
  if (!(bytes instanceof Uint8Array)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `loadNoisyClassifier: bytes: expected a Uint8Array, got ${describeValue(bytes)}`,
      { argument: 'bytes' },
    );
  }
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `loadNoisyClassifier: opts: expected an object, got ${describeValue(opts)}`);
  }
  const sde = opts.sde === undefined ? undefined : checkSdeArg(opts.sde, 'loadNoisyClassifier: sde');
  const { tensors, metadata } = decodeSafetensors(bytes);
  try {
    if (metadata.format !== undefined && metadata.format !== NOISY_FORMAT) {
      throw new SbmError(
        'CORRUPT_CHECKPOINT',
        `loadNoisyClassifier: expected a file of format '${NOISY_FORMAT}', got '${metadata.format}'` +
          (metadata.format === 'sbm-mnist-classifier-v1' ? ' (the clean classifier: use loadClassifier)' : ''),
        { format: metadata.format },
      );
    }
    checkNoisyParams(tensors, 'loadNoisyClassifier');
  } catch (e) {
    tf.dispose(Object.values(tensors));
    throw e;
  }
  const params: NoisyClassifierParams = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (NOISY_PARAM_NAMES.includes(name)) params[name] = t;
    else t.dispose();
  }
  return new NoisyMnistClassifier(params, metadata, { sde });
}
