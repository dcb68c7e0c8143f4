import * as tf from '@tensorflow/tfjs';
import { SbmError, createRegistry, describeValue, type RegisterOptions } from '@sbm/core';
import { checkBatchShape, type LinearOperator } from './operator';

/**
 * Classical reconstructions x̃ = R(y) that the conditional samplers are compared with: zero / mean / nearest fill for
 * inpainting, bicubic for super-resolution, the replicated gray image for colorization and the minimum-norm A⁺ y for
 * any operator with a pseudo-inverse. The CT and MRI operators register 'fbp' and 'zero-filled-idft' from their files.
 */
export type BaselineFn = (operator: LinearOperator, y: tf.Tensor) => tf.Tensor | Promise<tf.Tensor>;

export interface BaselineOptions extends RegisterOptions {
  /** The operator names (LinearOperator.name) it applies to; omitted with `applies` omitted: every operator. */
  operators?: string[];
  /** A finer test than the names (e.g. 'min-norm': the operator has a pinv). Both must hold when both are given. */
  applies?: (operator: LinearOperator) => boolean;
  description?: string;
}

interface BaselineEntry {
  fn: BaselineFn;
  operators?: readonly string[];
  applies?: (operator: LinearOperator) => boolean;
}

const baselines = createRegistry<BaselineEntry>('baseline', {
  isValue: (v) => typeof v === 'object' && v !== null && typeof (v as BaselineEntry).fn === 'function',
  expected: 'a function (operator, y) => x',
  argument: 'baseline',
});

/**
 * Registers a baseline reconstruction under `name`. DUPLICATE_NAME when taken unless `{ override }` (or `{ ifAbsent }`,
 * how packages register their built-ins so that an ESM and a CJS copy loaded together register once).
 */
export function registerBaseline(name: string, fn: BaselineFn, opts: BaselineOptions = {}): void {
  if (typeof fn !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerBaseline: fn: expected a function (operator, y) => x, got ${describeValue(fn)}`,
      {
        argument: 'fn',
      },
    );
  }
  const { operators, applies, ...registerOpts } = opts;
  if (operators !== undefined && !(Array.isArray(operators) && operators.every((o) => typeof o === 'string'))) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerBaseline: operators: expected an array of operator names, got ${describeValue(operators)}`,
      { argument: 'operators' },
    );
  }
  if (applies !== undefined && typeof applies !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerBaseline: applies: expected a function (operator) => boolean, got ${describeValue(applies)}`,
      { argument: 'applies' },
    );
  }
  baselines.register(name, { fn, operators: operators && [...operators], applies }, registerOpts);
}

export function unregisterBaseline(name: string): boolean {
  return baselines.unregister(name);
}

/** Every registered baseline name. */
export function listBaselines(): string[] {
  return baselines.list();
}

function appliesTo(e: BaselineEntry, op: LinearOperator): boolean {
  if (e.operators && !e.operators.includes(op.name)) return false;
  return e.applies ? e.applies(op) : true;
}

function checkOperatorShape(op: unknown): LinearOperator {
  const o = op as Partial<LinearOperator> | null;
  if (
    o === null ||
    typeof o !== 'object' ||
    typeof o.name !== 'string' ||
    !Array.isArray(o.inShape) ||
    !Array.isArray(o.outShape)
  ) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator: expected a LinearOperator { name, inShape, outShape, forward, adjoint }, got ${describeValue(op)}`,
      { argument: 'operator' },
    );
  }
  return op as LinearOperator;
}

/** The baselines that apply to `operator` (by its name, and its pinv for 'min-norm'), in registration order. */
export function baselinesFor(operator: LinearOperator): string[] {
  const op = checkOperatorShape(operator);
  return baselines
    .entries()
    .filter((e) => appliesTo(e.value, op))
    .map((e) => e.name);
}

/**
 * Runs the baseline `name` on measurements y [b, ...operator.outShape]: the reconstruction [b, ...operator.inShape]
 * (a new tensor; y is not disposed). UNKNOWN_NAME for an unregistered name, UNSUPPORTED naming 'operator' when the
 * baseline does not apply to this operator, INVALID_SHAPE when y or the baseline's output has the wrong shape.
 */
export async function runBaseline(name: string, operator: LinearOperator, y: tf.Tensor): Promise<tf.Tensor> {
  const op = checkOperatorShape(operator);
  const entry = baselines.get(name, 'baseline');
  if (!appliesTo(entry, op)) {
    const which = entry.operators
      ? `the operators ${entry.operators.map((o) => `"${o}"`).join(', ')}`
      : 'other operators';
    throw new SbmError(
      'UNSUPPORTED',
      `operator: the baseline "${name}" applies to ${which}${entry.applies ? ' (with the capability it needs, e.g. a pinv)' : ''}, got the operator "${op.name}" (baselinesFor lists the ones that apply: ${baselinesFor(op).join(', ') || 'none'})`,
      { argument: 'operator', baseline: name },
    );
  }
  checkBatchShape(y, op.outShape, 'y', `a measurement of the ${op.name} operator`);
  const out = await entry.fn(op, y);
  const ok =
    out instanceof tf.Tensor &&
    out.rank === op.inShape.length + 1 &&
    out.shape[0] === y.shape[0] &&
    op.inShape.every((d, i) => out.shape[i + 1] === d);
  if (!ok) {
    if (out instanceof tf.Tensor && out !== y) out.dispose();
    throw new SbmError(
      'INVALID_SHAPE',
      `baseline "${name}": expected a reconstruction of shape [${[y.shape[0], ...op.inShape].join(', ')}], got ${describeValue(out)}`,
      { argument: 'baseline' },
    );
  }
  // A baseline returning its input unchanged would let the caller dispose y through the result.
  return out === y ? tf.clone(y) : out;
}

// ---------- built-ins ----------

/** The 0/1 mask of an inpainting operator [...inShape] (its decoupled form's mask, since T = I there). */
function maskOf(op: LinearOperator, baseline: string): tf.Tensor {
  const m = (op as { mask?: unknown }).mask ?? op.decoupled?.mask;
  if (!(m instanceof tf.Tensor) || m.rank !== op.inShape.length || !op.inShape.every((d, i) => m.shape[i] === d)) {
    throw new SbmError(
      'UNSUPPORTED',
      `operator: the baseline "${baseline}" needs an inpainting operator with a mask of shape [${op.inShape.join(', ')}] (maskOperator), got ${describeValue(m)}`,
      { argument: 'operator' },
    );
  }
  return m;
}

/** [H, W, C] of an image operator (rank 2 reads as one channel). */
function imageDims(shape: readonly number[], baseline: string, argument = 'operator'): [number, number, number] {
  if (shape.length === 3) return [shape[0], shape[1], shape[2]];
  if (shape.length === 2) return [shape[0], shape[1], 1];
  throw new SbmError(
    'UNSUPPORTED',
    `${argument}: the baseline "${baseline}" needs images [H, W, C] or [H, W], got inShape [${shape.join(', ')}]`,
    { argument },
  );
}

/**
 * Unknown entries ← the mean of the image's known entries of the same channel (the last axis; rank 1: one channel).
 * A channel with no known entry is filled with 0.
 */
function meanFill(op: LinearOperator, y: tf.Tensor): tf.Tensor {
  const mask = maskOf(op, 'mean-fill');
  return tf.tidy(() => {
    const r = op.inShape.length;
    const axes = r === 1 ? [1] : Array.from({ length: r - 1 }, (_, i) => i + 1);
    const m = tf.expandDims(mask, 0);
    const known = tf.mul(y, m);
    const count = tf.sum(m, axes, true);
    const mean = tf.div(tf.sum(known, axes, true), tf.maximum(count, 1));
    return tf.add(known, tf.mul(mean, tf.sub(1, m)));
  });
}

/**
 * Nearest known pixel per sample pair of squared distances: the exact Euclidean distance transform with argmin
 * tracking (Felzenszwalb & Huttenlocher 2012: a 1-D pass down each column, then the lower envelope of parabolas
 * along each row), O(H·W) per channel. Returns, per pixel, the flat index h·W + w of its nearest known pixel, or −1
 * when the channel has none. Ties go to the parabola found first on the envelope (deterministic).
 */
export function nearestKnownIndex(known: Uint8Array, height: number, width: number): Int32Array {
  const H = height;
  const W = width;
  // Pass 1: per column, the nearest known row (distance² in g, its row in rowOf).
  const g = new Float64Array(H * W);
  const rowOf = new Int32Array(H * W).fill(-1);
  for (let w = 0; w < W; w++) {
    let last = -1;
    for (let h = 0; h < H; h++) {
      if (known[h * W + w]) last = h;
      rowOf[h * W + w] = last;
    }
    last = -1;
    for (let h = H - 1; h >= 0; h--) {
      if (known[h * W + w]) last = h;
      const up = rowOf[h * W + w];
      if (last >= 0 && (up < 0 || last - h < h - up)) rowOf[h * W + w] = last;
      const r = rowOf[h * W + w];
      g[h * W + w] = r < 0 ? Infinity : (h - r) * (h - r);
    }
  }
  // Pass 2: per row, min over columns q of (w − q)² + g[h, q]: the lower envelope of the parabolas rooted at q.
  const out = new Int32Array(H * W).fill(-1);
  const v = new Int32Array(W);
  const z = new Float64Array(W + 1);
  for (let h = 0; h < H; h++) {
    const f = (q: number) => g[h * W + q];
    let k = -1;
    for (let q = 0; q < W; q++) {
      const fq = f(q);
      if (fq === Infinity) continue;
      let s = -Infinity;
      while (k >= 0) {
        const p = v[k];
        s = (fq + q * q - f(p) - p * p) / (2 * (q - p));
        if (s <= z[k]) k--;
        else break;
      }
      if (k < 0) {
        k = 0;
        v[0] = q;
        z[0] = -Infinity;
        z[1] = Infinity;
      } else {
        k++;
        v[k] = q;
        z[k] = s;
        z[k + 1] = Infinity;
      }
    }
    if (k < 0) continue; // no known pixel in any column: the whole channel is unknown
    let j = 0;
    for (let w = 0; w < W; w++) {
      while (z[j + 1] < w) j++;
      const q = v[j];
      out[h * W + w] = rowOf[h * W + q] * W + q;
    }
  }
  return out;
}

/** Each unknown pixel ← the nearest known pixel of its channel (Euclidean); one awaited readback, then plain JS. */
async function nearestFill(op: LinearOperator, y: tf.Tensor): Promise<tf.Tensor> {
  const mask = maskOf(op, 'nearest-fill');
  const [H, W, C] = imageDims(op.inShape, 'nearest-fill');
  const [yv, mv] = await Promise.all([y.data(), mask.data()]);
  const b = y.shape[0];
  const out = new Float32Array(b * H * W * C);
  const known = new Uint8Array(H * W);
  for (let c = 0; c < C; c++) {
    for (let p = 0; p < H * W; p++) known[p] = mv[p * C + c] === 1 ? 1 : 0;
    const near = nearestKnownIndex(known, H, W);
    for (let n = 0; n < b; n++) {
      const base = n * H * W * C;
      for (let p = 0; p < H * W; p++) {
        const src = near[p];
        out[base + p * C + c] = src < 0 ? 0 : yv[base + src * C + c];
      }
    }
  }
  return tf.tensor(out, [b, ...op.inShape]);
}

/** Keys' cubic convolution kernel with a = −0.5 (Keys 1981, eq. 15): interpolating, reproduces quadratics. */
function keys(s: number): number {
  const a = -0.5;
  const t = Math.abs(s);
  if (t <= 1) return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1;
  if (t < 2) return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a;
  return 0;
}

/**
 * The [big × small] bicubic upsampling matrix by `k`: output pixel X sits at low-res coordinate u = (X + ½)/k − ½
 * (pixel centres; a k×k average's value belongs to its block's centre), taps ⌊u⌋ − 1 … ⌊u⌋ + 2 clamped to the edge.
 */
export function bicubicMatrix(small: number, k: number): Float64Array {
  const big = small * k;
  const w = new Float64Array(big * small);
  for (let X = 0; X < big; X++) {
    const u = (X + 0.5) / k - 0.5;
    const i0 = Math.floor(u);
    for (let tap = i0 - 1; tap <= i0 + 2; tap++) {
      const src = Math.min(small - 1, Math.max(0, tap));
      w[X * small + src] += keys(u - tap);
    }
  }
  return w;
}

/** Bicubic (Keys, a = −0.5) upsampling of the k×k-averaged image, separable: x = W_h · y · W_wᵀ per channel. */
function bicubic(op: LinearOperator, y: tf.Tensor): tf.Tensor {
  const [H, W, C] = imageDims(op.inShape, 'bicubic');
  const [h, w, c] = imageDims(op.outShape, 'bicubic');
  const k = H / h;
  if (!(Number.isInteger(k) && k >= 1 && W === w * k && c === C)) {
    throw new SbmError(
      'UNSUPPORTED',
      `operator: the baseline "bicubic" needs a k×k downsampling [H, W, C] → [H/k, W/k, C], got [${op.inShape.join(', ')}] → [${op.outShape.join(', ')}]`,
      { argument: 'operator' },
    );
  }
  const wh = bicubicMatrix(h, k);
  const ww = bicubicMatrix(w, k);
  return tf.tidy(() => {
    const b = y.shape[0];
    const Wh = tf.tensor2d(Float32Array.from(wh), [H, h]);
    const Ww = tf.tensor2d(Float32Array.from(ww), [W, w]);
    const y4 = tf.reshape(y, [b, h, w, C]);
    // Columns: [b, C, h, w] · W_wᵀ → [b, C, h, W].
    const cols = tf.matMul(tf.reshape(tf.transpose(y4, [0, 3, 1, 2]), [b * C * h, w]), Ww, false, true);
    // Rows: [b, C, W, h] · W_hᵀ → [b, C, W, H].
    const t = tf.transpose(tf.reshape(cols, [b * C, h, W]), [0, 2, 1]);
    const rows = tf.matMul(tf.reshape(t, [b * C * W, h]), Wh, false, true);
    return tf.reshape(tf.transpose(tf.reshape(rows, [b, C, W, H]), [0, 3, 2, 1]), [b, ...op.inShape]);
  });
}

/** The gray image g = y/√3 (y = (R+G+B)/√3 is √3 times the mean of RGB) in every channel. */
function grayReplicated(op: LinearOperator, y: tf.Tensor): tf.Tensor {
  const [, , C] = imageDims(op.inShape, 'gray-replicated');
  return tf.tidy(() => tf.reshape(tf.tile(tf.div(y, Math.sqrt(3)), [1, 1, 1, C]), [y.shape[0], ...op.inShape]));
}

const SOURCE = '@sbm/inverse-problems';
const builtins: [string, BaselineFn, Omit<BaselineOptions, 'ifAbsent' | 'source'>][] = [
  [
    'zero-fill',
    (op, y) => tf.tidy(() => op.adjoint(y)),
    { operators: ['mask'], description: 'inpainting: the unknown pixels left at 0 (Aᵀ y)' },
  ],
  [
    'mean-fill',
    meanFill,
    {
      operators: ['mask'],
      description: "inpainting: the unknown pixels set to the mean of the image's known ones, per channel",
    },
  ],
  [
    'nearest-fill',
    nearestFill,
    {
      operators: ['mask'],
      description: 'inpainting: each unknown pixel takes the value of the nearest known one (Euclidean)',
    },
  ],
  [
    'bicubic',
    bicubic,
    { operators: ['downsample'], description: 'super-resolution: Keys bicubic (a = −0.5) upsampling, edges clamped' },
  ],
  [
    'gray-replicated',
    grayReplicated,
    { operators: ['grayscale'], description: 'colorization: the gray image (R+G+B)/3 in every channel' },
  ],
  [
    'min-norm',
    (op, y) => tf.tidy(() => op.pinv!(y)),
    {
      applies: (op) => typeof op.pinv === 'function',
      description: 'any operator with a pseudo-inverse: the minimum-norm solution A⁺ y',
    },
  ],
];
for (const [name, fn, opts] of builtins) registerBaseline(name, fn, { ...opts, ifAbsent: true, source: SOURCE });
