/**
 * Coloured digits: MNIST with a seeded digit colour and background colour per image, the colour data set of the
 * colorization experiments (issue 14). Browser-safe: `colorizeDigits` turns any gray digits into coloured ones;
 * `loadColoredMnist` (in @sbm/datasets/node) reads MNIST from disk first.
 *
 * Colour rule (exactly): for image i, in order, draw fg = (u, u, u) then bg = (u, u, u) with u uniform on [0, 1)
 * from one JS float64 stream (Rng), and redraw both until
 *   chroma(fg) ≥ minChroma and chroma(bg) ≥ minChroma            (both tinted; chroma = max − min of R, G, B, the
 *                                                                 HSV/HSL chroma, so neither is a gray), and
 *   |g(fg) − g(bg)| ≥ minContrast                                (the digit stays visible in gray),
 * with the gray level g = (R + G + B)/3: the channel that score_sde's colorizer observes (get_pc_colorizer's
 * decoupled channel 0 is (R + G + B)/√3 = √3·g), so every digit is visible in the measurement the colorization
 * methods condition on. Then x = bg·(1 − m) + fg·m per pixel, m = MNIST byte / 255.
 * The train and test splits use the two first forks of SeedStream(seed), so their colours are independent and the
 * colours of image i do not depend on how many images were asked for.
 *
 * Why a second rule, `palette: 'class'`: under the random rule above the colours are independent of the digit and
 * the rejection rule is symmetric under permuting R, G and B, so given the gray image the posterior mean colour is
 * the gray itself — the gray-replicated image IS the MMSE colorization and no sampler can beat it on PSNR (a posterior
 * sample has twice the MMSE's expected squared error). Real colorization works because colour follows content
 * (grass is green); the class palette makes that so here: digit k gets a fixed bright colour of hue 36k° and a dark
 * background of the opposite hue (`classPalette`), each channel jittered by an independent uniform(−jitter, jitter)
 * (default 0.05, clipped to [0, 1]) from the same seeded stream. A model that recognises the digit can colour it.
 */
import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkNumber, describeValue } from '@sbm/core';
import { Rng } from './rng';
import { checkRange, type DataRange } from './range';

/**
 * Weights of the gray level the contrast rule uses: the plain channel mean, i.e. score_sde's colorization
 * measurement (R + G + B)/√3 divided by √3. Not Rec. 709 luma: a pair with equal mean but different luma would be
 * invisible to the colorizer.
 */
export const GRAY_WEIGHTS: readonly [number, number, number] = [1 / 3, 1 / 3, 1 / 3];

export const COLORED_MNIST_DEFAULTS = { minContrast: 0.3, minChroma: 0.2 } as const;

/** Above these the rejection sampler would mostly reject (or could never accept); see checkColorOptions. */
const MAX_CONTRAST = 0.5;
const MAX_CHROMA = 0.4;
/**
 * Draws per image before giving up. Inside the bounds above a pair is accepted with probability ≥ 0.13 % (at
 * minContrast 0.5, minChroma 0.4; 14 % at the defaults; Monte Carlo, 4·10⁶ pairs), so failing has probability
 * below e^−130: the cap only turns a future bound change into an error instead of a hang.
 */
const MAX_TRIES = 100_000;

export interface DigitColorOptions {
  /** Seed of the colours (default 0): same seed ⇒ same colours, on every backend (drawn in JS float64). */
  seed?: number;
  /** Minimum |g(fg) − g(bg)| of the gray levels g = (R + G + B)/3 (default 0.3, at most 0.5). */
  minContrast?: number;
  /** Minimum chroma (max − min of R, G, B) of both colours (default 0.2, at most 0.4). */
  minChroma?: number;
  /** Which split's colour stream to use (default 'train'); train and test colours are independent. */
  split?: 'train' | 'test';
  /**
   * 'random' (default): the rejection rule above, colours independent of the digit. 'class': the colours of the
   * digit's class (classPalette) plus per-channel jitter; needs the labels. minContrast / minChroma do not apply.
   */
  palette?: 'random' | 'class';
  /** Half-width of the uniform per-channel jitter of the class palette (default 0.05, at most 0.1). */
  jitter?: number;
}

/** HSV (hue in degrees, saturation and value in [0, 1]) → RGB in [0, 1]. */
function hsv(h: number, s: number, v: number): [number, number, number] {
  const c = v * s;
  const hp = (((h % 360) + 360) % 360) / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const m = v - c;
  const [r, g, b] =
    hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  return [r + m, g + m, b + m];
}

/**
 * The class palette: digit k is drawn in HSV(36k°, 0.6, 1) on HSV(36k° + 180°, 0.75, 0.4). The digit's gray level
 * (R + G + B)/3 is in [0.6, 0.8] and the background's in [0.2, 0.3], so the contrast is ≥ 0.3 before jitter
 * (≥ 0.2 after the default jitter); chroma 0.6 and 0.3.
 */
export function classPalette(k: number): {
  foreground: [number, number, number];
  background: [number, number, number];
} {
  checkNumber(k, 'classPalette: k', { integer: true, min: 0, max: 9 });
  return { foreground: hsv(36 * k, 0.6, 1), background: hsv(36 * k + 180, 0.75, 0.4) };
}

const MAX_JITTER = 0.1;

export interface DigitColors {
  /** [n·3] digit colours, RGB in [0, 1], row i = image i. */
  foreground: Float64Array;
  /** [n·3] background colours, RGB in [0, 1]. */
  background: Float64Array;
}

export interface ColorizeOptions extends DigitColorOptions {
  /** Output value range (default [0, 1]): x ∈ [0, 1] is mapped affinely onto it. */
  range?: DataRange;
}

export interface ColoredMnistData {
  /** [n, H, W, 3] float32 in `range` (NHWC). */
  images: tf.Tensor4D;
  /** [n] int32 class labels (passed through from the gray digits). */
  labels: tf.Tensor1D;
  /** [n, 3] float32 digit colours, RGB in [0, 1] whatever `range` is. */
  foreground: tf.Tensor2D;
  /** [n, 3] float32 background colours, RGB in [0, 1]. */
  background: tf.Tensor2D;
  range: DataRange;
  count: number;
}

/** Gray level (R + G + B)/3 of the colour at c[3i..3i+2]. */
export function grayLevel(c: ArrayLike<number>, i = 0): number {
  return (c[3 * i] + c[3 * i + 1] + c[3 * i + 2]) / 3;
}

/** max − min of R, G, B (HSV chroma) of the colour at c[3i..3i+2]. */
export function chroma(c: ArrayLike<number>, i = 0): number {
  const r = c[3 * i];
  const g = c[3 * i + 1];
  const b = c[3 * i + 2];
  return Math.max(r, g, b) - Math.min(r, g, b);
}

function checkSplit(split: unknown, fn: string): 'train' | 'test' {
  if (split === undefined) return 'train';
  if (split !== 'train' && split !== 'test') {
    throw new SbmError('UNKNOWN_NAME', `${fn}: split: expected "train" or "test", got ${describeValue(split)}`, {
      argument: 'split',
      received: split,
    });
  }
  return split;
}

function checkColorOptions(opts: DigitColorOptions, fn: string) {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `${fn}: opts: expected an options object, got ${describeValue(opts)}`);
  }
  const seed = opts.seed ?? 0;
  checkNumber(seed, `${fn}: seed`, { integer: true, min: 0 });
  const minContrast = checkNumber(opts.minContrast ?? COLORED_MNIST_DEFAULTS.minContrast, `${fn}: minContrast`, {
    min: 0,
    max: MAX_CONTRAST,
  });
  const minChroma = checkNumber(opts.minChroma ?? COLORED_MNIST_DEFAULTS.minChroma, `${fn}: minChroma`, {
    min: 0,
    max: MAX_CHROMA,
  });
  const palette = opts.palette ?? 'random';
  if (palette !== 'random' && palette !== 'class') {
    throw new SbmError('UNKNOWN_NAME', `${fn}: palette: expected "random" or "class", got ${describeValue(palette)}`, {
      argument: 'palette',
      received: palette,
    });
  }
  const jitter = checkNumber(opts.jitter ?? 0.05, `${fn}: jitter`, { min: 0, max: MAX_JITTER });
  return { seed, minContrast, minChroma, split: checkSplit(opts.split, fn), palette, jitter };
}

/**
 * The per-image colours of `colorizeDigits` (see the rules at the top of this file), drawn in JS float64. The class
 * palette needs `labels` (one digit class 0–9 per image).
 */
export function drawDigitColors(n: number, opts: DigitColorOptions = {}, labels?: ArrayLike<number>): DigitColors {
  checkNumber(n, 'drawDigitColors: n', { integer: true, min: 1 });
  const { seed, minContrast, minChroma, split, palette, jitter } = checkColorOptions(opts, 'drawDigitColors');
  const root = new SeedStream(seed);
  const trainStream = root.fork();
  const rng = new Rng(split === 'train' ? trainStream : root.fork());
  const foreground = new Float64Array(3 * n);
  const background = new Float64Array(3 * n);
  if (palette === 'class') {
    if (!labels || labels.length !== n) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `drawDigitColors: labels: expected ${n} digit classes for palette "class", got ${describeValue(labels)}`,
        { argument: 'labels' },
      );
    }
    const clip = (v: number) => Math.min(1, Math.max(0, v));
    for (let i = 0; i < n; i++) {
      const k = labels[i];
      if (!Number.isInteger(k) || k < 0 || k > 9) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `drawDigitColors: labels: expected classes 0–9, got ${describeValue(k)} at ${i}`,
          {
            argument: 'labels',
          },
        );
      }
      const { foreground: f, background: b } = classPalette(k);
      for (let c = 0; c < 3; c++) foreground[3 * i + c] = clip(f[c] + jitter * (2 * rng.uniform() - 1));
      for (let c = 0; c < 3; c++) background[3 * i + c] = clip(b[c] + jitter * (2 * rng.uniform() - 1));
    }
    return { foreground, background };
  }
  const fg = new Float64Array(3);
  const bg = new Float64Array(3);
  for (let i = 0; i < n; i++) {
    let tries = 0;
    for (;;) {
      for (let k = 0; k < 3; k++) fg[k] = rng.uniform();
      for (let k = 0; k < 3; k++) bg[k] = rng.uniform();
      if (chroma(fg) >= minChroma && chroma(bg) >= minChroma && Math.abs(grayLevel(fg) - grayLevel(bg)) >= minContrast)
        break;
      if (++tries >= MAX_TRIES) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `drawDigitColors: no colour pair met minContrast ${minContrast} and minChroma ${minChroma} in ${MAX_TRIES} draws`,
        );
      }
    }
    foreground.set(fg, 3 * i);
    background.set(bg, 3 * i);
  }
  return { foreground, background };
}

/**
 * Colours gray digits: images [n, H, W, 1] with values in [0, 1] (the digit intensity m) become
 * x = bg·(1 − m) + fg·m, [n, H, W, 3] in `range`. Labels [n] are passed through (copied; the inputs stay the
 * caller's). Async: the gray values are read with `await data()`.
 */
export async function colorizeDigits(
  gray: tf.Tensor4D,
  labels: tf.Tensor1D,
  opts: ColorizeOptions = {},
): Promise<ColoredMnistData> {
  const fn = 'colorizeDigits';
  if (!(gray instanceof tf.Tensor) || gray.rank !== 4 || gray.shape[3] !== 1) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${fn}: gray: expected a tensor [n, H, W, 1] of digit intensities in [0, 1], got ${describeValue(gray)}`,
    );
  }
  const [n, h, w] = gray.shape;
  if (!(labels instanceof tf.Tensor) || labels.rank !== 1 || labels.shape[0] !== n) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${fn}: labels: expected a tensor [${n}] (one label per image), got ${describeValue(labels)}`,
    );
  }
  if (n < 1) throw new SbmError('INVALID_ARGUMENT', `${fn}: gray: expected at least 1 image, got 0`);
  const [lo, hi] = checkRange(opts.range ?? [0, 1], `${fn}: range`);
  const lab = await labels.data();
  const { foreground, background } = drawDigitColors(n, opts, lab);
  const m = await gray.data();
  const per = h * w;
  const out = new Float32Array(n * per * 3);
  const k = hi - lo;
  for (let i = 0; i < n; i++) {
    const f0 = foreground[3 * i];
    const f1 = foreground[3 * i + 1];
    const f2 = foreground[3 * i + 2];
    const b0 = background[3 * i];
    const b1 = background[3 * i + 1];
    const b2 = background[3 * i + 2];
    for (let p = 0; p < per; p++) {
      const v = m[i * per + p];
      if (!(v >= 0 && v <= 1)) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `${fn}: gray: expected intensities in [0, 1], got ${describeValue(v)} in image ${i}`,
        );
      }
      const o = 3 * (i * per + p);
      const u = 1 - v;
      // bg·(1 − m) + fg·m in this order: m = 0 gives bg and m = 1 gives fg exactly.
      out[o] = lo + k * (b0 * u + f0 * v);
      out[o + 1] = lo + k * (b1 * u + f1 * v);
      out[o + 2] = lo + k * (b2 * u + f2 * v);
    }
  }
  return {
    images: tf.tensor4d(out, [n, h, w, 3], 'float32'),
    labels: tf.tensor1d(Int32Array.from(lab), 'int32'),
    foreground: tf.tensor2d(Float32Array.from(foreground), [n, 3], 'float32'),
    background: tf.tensor2d(Float32Array.from(background), [n, 3], 'float32'),
    range: [lo, hi],
    count: n,
  };
}
