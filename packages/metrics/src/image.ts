import * as tf from '@tensorflow/tfjs';
import { SbmError, checkDataRange, checkNumber, checkOptions, describeValue } from '@sbm/core';

/**
 * Image-restoration metrics (PSNR, SSIM) for inverse-problem benchmarks, computed in float64 JS on typed arrays.
 *
 * Layout: [H, W] (one gray image), [H, W, C] (one image, channels last) or [N, H, W, C] (a batch). A tensor is read
 * once with dataSync — these run once per evaluation, never per sampling step.
 */
export type ImageInput = tf.Tensor | { data: ArrayLike<number>; shape: readonly number[] };

export interface PsnrOptions {
  /**
   * The data range R: a width (max − min possible value, scikit-image's `data_range`) or the repo's [low, high]
   * interval (R = high − low). Required: guessing it from the values is what makes published PSNRs disagree.
   */
  dataRange: number | readonly [number, number];
}

export interface SsimOptions extends PsnrOptions {
  /**
   * Gaussian window side: 11 (default; radius ⌊3.5σ + 0.5⌋ = 5 at σ = 1.5, Wang et al. 2004 and scikit-image) or 7
   * (radius 3, the truncated kernel renormalised — for images too small for 11, see README for how it relates to
   * scikit-image's `win_size=7`).
   */
  window?: 7 | 11;
  /** Gaussian σ in pixels (default 1.5). */
  sigma?: number;
  /** Stabiliser constants C1 = (K1 R)², C2 = (K2 R)² (defaults 0.01, 0.03). */
  k1?: number;
  k2?: number;
}

/** Mean, standard error of the mean (sample SD / √n; 0 for n = 1) and the per-image values. */
export interface ImageMetricSummary {
  mean: number;
  se: number;
  n: number;
  values: number[];
}

interface Images {
  data: Float64Array;
  n: number;
  h: number;
  w: number;
  c: number;
}

const PSNR_KEYS = ['dataRange'] as const;
const SSIM_KEYS = ['dataRange', 'window', 'sigma', 'k1', 'k2'] as const;

function readImages(x: unknown, name: string): Images {
  let shape: readonly number[];
  let values: ArrayLike<number>;
  if (x instanceof tf.Tensor) {
    if (x.isDisposed) {
      throw new SbmError('INVALID_ARGUMENT', `${name}: the tensor has already been disposed`, { argument: name });
    }
    shape = x.shape;
    values = x.dataSync() as ArrayLike<number>;
  } else if (
    x !== null &&
    typeof x === 'object' &&
    'data' in x &&
    'shape' in x &&
    Array.isArray((x as { shape: unknown }).shape)
  ) {
    shape = (x as { shape: number[] }).shape;
    values = (x as { data: ArrayLike<number> }).data;
    if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `${name}.data: expected an array or typed array of numbers, got ${describeValue(values)}`,
        { argument: name },
      );
    }
  } else {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected a tf.Tensor or { data, shape } of shape [H, W], [H, W, C] or [N, H, W, C], got ${describeValue(x)}`,
      { argument: name },
    );
  }
  if (shape.length < 2 || shape.length > 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${name}: expected shape [H, W], [H, W, C] or [N, H, W, C] with positive sizes, got [${shape.join(', ')}]`,
      { argument: name, received: [...shape] },
    );
  }
  const [n, h, w, c] =
    shape.length === 2
      ? [1, shape[0], shape[1], 1]
      : shape.length === 3
        ? [1, shape[0], shape[1], shape[2]]
        : [shape[0], shape[1], shape[2], shape[3]];
  const size = n * h * w * c;
  if (values.length !== size) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${name}.data: expected ${size} values for shape [${shape.join(', ')}], got ${values.length}`,
      { argument: name, expected: size, received: values.length },
    );
  }
  const data = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new SbmError('NON_FINITE', `${name}: expected finite values, got ${describeValue(v)} at flat index ${i}`, {
        argument: name,
      });
    }
    data[i] = v;
  }
  return { data, n, h, w, c };
}

function readPair(a: unknown, b: unknown): [Images, Images] {
  const A = readImages(a, 'a');
  const B = readImages(b, 'b');
  if (A.n !== B.n || A.h !== B.h || A.w !== B.w || A.c !== B.c) {
    throw new SbmError(
      'INVALID_SHAPE',
      `b: expected the shape of a ([${A.n}, ${A.h}, ${A.w}, ${A.c}] as [N, H, W, C]), got [${B.n}, ${B.h}, ${B.w}, ${B.c}]`,
      { argument: 'b', expected: [A.n, A.h, A.w, A.c], received: [B.n, B.h, B.w, B.c] },
    );
  }
  return [A, B];
}

function readRange(options: unknown, where: string): number {
  if (options === null || typeof options !== 'object' || !('dataRange' in options)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${where}: options.dataRange: expected a width > 0 or [low, high] (e.g. 1 or [0, 1]), got ${describeValue(
        options === null || typeof options !== 'object' ? options : undefined,
      )}`,
      { argument: 'dataRange' },
    );
  }
  const r = (options as { dataRange: unknown }).dataRange;
  if (Array.isArray(r)) {
    const [lo, hi] = checkDataRange(r, `${where}: options.dataRange`);
    return hi - lo;
  }
  return checkNumber(r, `${where}: options.dataRange`, { gt: 0 });
}

function summarize(values: number[]): ImageMetricSummary {
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  let se = 0;
  if (n > 1 && Number.isFinite(mean)) {
    const ss = values.reduce((s, v) => s + (v - mean) * (v - mean), 0);
    se = Math.sqrt(ss / (n - 1) / n);
  } else if (n > 1) {
    // Some images reconstructed exactly (PSNR = ∞): the mean is ∞ and the spread is undefined.
    se = NaN;
  }
  return { mean, se, n, values };
}

/** PSNR of each image: 10 log10(R² / MSE), MSE over all pixels and channels of that image (∞ when identical). */
export function psnrPerImage(a: ImageInput, b: ImageInput, options: PsnrOptions): number[] {
  checkOptions(options, PSNR_KEYS, 'psnr');
  const R = readRange(options, 'psnr');
  const [A, B] = readPair(a, b);
  const size = A.h * A.w * A.c;
  const out: number[] = [];
  for (let k = 0; k < A.n; k++) {
    let se = 0;
    for (let i = k * size; i < (k + 1) * size; i++) {
      const d = A.data[i] - B.data[i];
      se += d * d;
    }
    const mse = se / size;
    out.push(mse === 0 ? Infinity : 10 * Math.log10((R * R) / mse));
  }
  return out;
}

/**
 * PSNR in dB (scikit-image `peak_signal_noise_ratio` with `data_range` = R). For a batch [N, H, W, C], the mean of
 * the per-image PSNRs (the convention of DPS / score_inverse_problems tables), not the PSNR of the pooled MSE.
 */
export function psnr(a: ImageInput, b: ImageInput, options: PsnrOptions): number {
  return summarize(psnrPerImage(a, b, options)).mean;
}

/** Per-image PSNR with mean ± standard error. */
export function psnrSummary(a: ImageInput, b: ImageInput, options: PsnrOptions): ImageMetricSummary {
  return summarize(psnrPerImage(a, b, options));
}

/** The normalised 1-D Gaussian taps exp(−i² / 2σ²), i = −r..r (scipy.ndimage's `_gaussian_kernel1d`). */
export function gaussianWindow1d(radius: number, sigma: number): Float64Array {
  const taps = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp((-0.5 * i * i) / (sigma * sigma));
    taps[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < taps.length; i++) taps[i] /= sum;
  return taps;
}

/**
 * Valid-region separable filtering of one channel: out[i, j] = Σ_{u,v} g[u] g[v] x[i+u, j+v] for every window that
 * fits entirely inside the image ([H − 2r, W − 2r] outputs). scikit-image filters the full image (reflect padding) and
 * then crops r pixels on each side, which leaves exactly these values: the border never enters a kept window.
 */
function filterValid(
  x: Float64Array,
  offset: number,
  stride: number,
  h: number,
  w: number,
  g: Float64Array,
  rowTmp: Float64Array,
  out: Float64Array,
): void {
  const taps = g.length;
  const ow = w - taps + 1;
  const oh = h - taps + 1;
  // Horizontal pass over every row: rowTmp[i, j] = Σ_v g[v] x[i, j + v].
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < ow; j++) {
      let s = 0;
      for (let v = 0; v < taps; v++) s += g[v] * x[offset + (i * w + j + v) * stride];
      rowTmp[i * ow + j] = s;
    }
  }
  // Vertical pass: out[i, j] = Σ_u g[u] rowTmp[i + u, j].
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      let s = 0;
      for (let u = 0; u < taps; u++) s += g[u] * rowTmp[(i + u) * ow + j];
      out[i * ow + j] = s;
    }
  }
}

/**
 * Mean SSIM of each image (Wang, Bovik, Sheikh & Simoncelli 2004, eq. 13 with Gaussian-weighted local statistics):
 * S = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)), averaged over the valid window positions and
 * then over channels. Matches scikit-image `structural_similarity(gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=R, channel_axis=-1)` for `window: 11` (population moments, truncate 3.5 →
 * 11 taps, crop 5; channels are averaged with equal weight, which equals skimage's mean of per-channel means).
 */
export function ssimPerImage(a: ImageInput, b: ImageInput, options: SsimOptions): number[] {
  checkOptions(options, SSIM_KEYS, 'ssim');
  const R = readRange(options, 'ssim');
  const win = options.window ?? 11;
  if (win !== 7 && win !== 11) {
    throw new SbmError('INVALID_ARGUMENT', `ssim: options.window: expected 7 or 11, got ${describeValue(win)}`, {
      argument: 'window',
      expected: [7, 11],
      received: win,
    });
  }
  const sigma = checkNumber(options.sigma ?? 1.5, 'ssim: options.sigma', { gt: 0 });
  const k1 = checkNumber(options.k1 ?? 0.01, 'ssim: options.k1', { min: 0 });
  const k2 = checkNumber(options.k2 ?? 0.03, 'ssim: options.k2', { min: 0 });
  const [A, B] = readPair(a, b);
  if (A.h < win || A.w < win) {
    throw new SbmError(
      'INVALID_SHAPE',
      `ssim: a: expected images of at least ${win}x${win} pixels for window ${win}, got ${A.h}x${A.w}`,
      { argument: 'a', expected: [win, win], received: [A.h, A.w] },
    );
  }
  const g = gaussianWindow1d((win - 1) / 2, sigma);
  const C1 = (k1 * R) ** 2;
  const C2 = (k2 * R) ** 2;
  const { h, w, c } = A;
  const oh = h - win + 1;
  const ow = w - win + 1;
  const plane = h * w;
  const xx = new Float64Array(plane);
  const yy = new Float64Array(plane);
  const xy = new Float64Array(plane);
  const rowTmp = new Float64Array(h * ow);
  const mx = new Float64Array(oh * ow);
  const my = new Float64Array(oh * ow);
  const mxx = new Float64Array(oh * ow);
  const myy = new Float64Array(oh * ow);
  const mxy = new Float64Array(oh * ow);
  const out: number[] = [];
  for (let k = 0; k < A.n; k++) {
    const base = k * plane * c;
    let total = 0;
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < plane; p++) {
        const xv = A.data[base + p * c + ch];
        const yv = B.data[base + p * c + ch];
        xx[p] = xv * xv;
        yy[p] = yv * yv;
        xy[p] = xv * yv;
      }
      filterValid(A.data, base + ch, c, h, w, g, rowTmp, mx);
      filterValid(B.data, base + ch, c, h, w, g, rowTmp, my);
      filterValid(xx, 0, 1, h, w, g, rowTmp, mxx);
      filterValid(yy, 0, 1, h, w, g, rowTmp, myy);
      filterValid(xy, 0, 1, h, w, g, rowTmp, mxy);
      let sum = 0;
      for (let q = 0; q < oh * ow; q++) {
        const ux = mx[q];
        const uy = my[q];
        // Population (weighted) moments: E[x²] − E[x]², as skimage with use_sample_covariance=False.
        const vx = mxx[q] - ux * ux;
        const vy = myy[q] - uy * uy;
        const vxy = mxy[q] - ux * uy;
        sum += ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
      }
      total += sum / (oh * ow);
    }
    out.push(total / c);
  }
  return out;
}

/** Mean SSIM; for a batch, the mean of the per-image values. */
export function ssim(a: ImageInput, b: ImageInput, options: SsimOptions): number {
  return summarize(ssimPerImage(a, b, options)).mean;
}

/** Per-image SSIM with mean ± standard error. */
export function ssimSummary(a: ImageInput, b: ImageInput, options: SsimOptions): ImageMetricSummary {
  return summarize(ssimPerImage(a, b, options));
}

/** Mean ± standard error of any per-image values (e.g. to pool PSNRs from several batches). */
export function summarizeValues(values: readonly number[]): ImageMetricSummary {
  if (
    !Array.isArray(values) ||
    values.length === 0 ||
    !values.every((v) => typeof v === 'number' && !Number.isNaN(v))
  ) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `summarizeValues: values: expected a non-empty array of numbers, got ${describeValue(values)}`,
      { argument: 'values' },
    );
  }
  return summarize([...values]);
}
