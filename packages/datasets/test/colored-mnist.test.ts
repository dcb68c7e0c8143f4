import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import {
  COLORED_MNIST_DEFAULTS,
  GRAY_WEIGHTS,
  chroma,
  classPalette,
  colorizeDigits,
  drawDigitColors,
  grayLevel,
  type ColoredMnistData,
} from '@sbm/datasets';
import { loadColoredMnist, loadMnist } from '@sbm/datasets/node';
import { describeWithBackends, expectRejectsSbm, expectThrowsSbm } from '@sbm/test-harness';

const N = 40;

function disposeAll(d: ColoredMnistData): void {
  tf.dispose([d.images, d.labels, d.foreground, d.background]);
}

/** Raw values of a loaded set (the tensors are disposed). */
async function values(d: ColoredMnistData) {
  const out = {
    images: await d.images.data(),
    labels: Array.from(await d.labels.data()),
    fg: await d.foreground.data(),
    bg: await d.background.data(),
  };
  disposeAll(d);
  return out;
}

describe('drawDigitColors: the colour rule', () => {
  it('every pair is tinted and has the minimum gray-level contrast, also at other thresholds', () => {
    for (const opts of [{}, { minContrast: 0.5, minChroma: 0.4, seed: 3 }, { minContrast: 0, minChroma: 0 }]) {
      const n = 2000;
      const { foreground: fg, background: bg } = drawDigitColors(n, opts);
      const minC = opts.minContrast ?? COLORED_MNIST_DEFAULTS.minContrast;
      const minS = opts.minChroma ?? COLORED_MNIST_DEFAULTS.minChroma;
      let worstContrast = Infinity;
      let worstChroma = Infinity;
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < n; i++) {
        worstContrast = Math.min(worstContrast, Math.abs(grayLevel(fg, i) - grayLevel(bg, i)));
        worstChroma = Math.min(worstChroma, chroma(fg, i), chroma(bg, i));
      }
      for (const c of [fg, bg]) {
        for (const x of c) {
          lo = Math.min(lo, x);
          hi = Math.max(hi, x);
        }
      }
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThan(1);
      expect(worstContrast).toBeGreaterThanOrEqual(minC);
      expect(worstChroma).toBeGreaterThanOrEqual(minS);
    }
  });

  it('the gray level is the channel mean (score_sde colorizer channel 0 over √3) and chroma is max − min', () => {
    expect(Array.from(GRAY_WEIGHTS)).toEqual([1 / 3, 1 / 3, 1 / 3]);
    expect(grayLevel([0.3, 0.6, 0.9])).toBeCloseTo(0.6, 12);
    expect(grayLevel([0, 1, 0, 0, 0, 0.75], 1)).toBe(0.25);
    expect(chroma([0.2, 0.9, 0.5])).toBeCloseTo(0.7, 12);
    expect(chroma([0.4, 0.1, 0.3, 0.5, 0.5, 0.5], 1)).toBe(0);
  });

  it('the rule rejects: the accepted contrasts are not what unconstrained uniform colours give', () => {
    // With minContrast 0 about 79 % of uniform pairs have |Δg| < 0.3 (Δg = difference of two means of three
    // uniforms, sd = 1/√18 ≈ 0.24); the default rule has none (checked above).
    const n = 600;
    const free = drawDigitColors(n, { minContrast: 0, minChroma: 0 });
    let low = 0;
    for (let i = 0; i < n; i++) {
      if (Math.abs(grayLevel(free.foreground, i) - grayLevel(free.background, i)) < 0.3) low++;
    }
    // Binomial(600, p ≈ 0.79): mean ≈ 475, sd ≈ 10; 300 is more than 17 sd below.
    expect(low).toBeGreaterThan(300);
  });

  it('same seed ⇒ same colours; another seed or the other split ⇒ other colours; image i does not depend on n', () => {
    const a = drawDigitColors(50, { seed: 7 });
    expect(drawDigitColors(50, { seed: 7 })).toEqual(a);
    const prefix = drawDigitColors(10, { seed: 7 });
    expect(Array.from(prefix.foreground)).toEqual(Array.from(a.foreground.subarray(0, 30)));
    expect(Array.from(prefix.background)).toEqual(Array.from(a.background.subarray(0, 30)));
    expect(drawDigitColors(50, { seed: 8 }).foreground[0]).not.toBe(a.foreground[0]);
    expect(drawDigitColors(50, { seed: 7, split: 'test' }).foreground[0]).not.toBe(a.foreground[0]);
  });

  it('bad options name the argument, the expectation and the value', () => {
    expectThrowsSbm(() => drawDigitColors(0), 'INVALID_ARGUMENT', /drawDigitColors: n: expected an integer >= 1.*0/);
    expectThrowsSbm(
      () => drawDigitColors(3, { minContrast: 0.9 }),
      'INVALID_ARGUMENT',
      /minContrast: expected a finite number >= 0 <= 0.5.*0.9/,
    );
    expectThrowsSbm(() => drawDigitColors(3, { minChroma: -1 }), 'INVALID_ARGUMENT', /minChroma:.*-1/);
    expectThrowsSbm(() => drawDigitColors(3, { seed: 1.5 }), 'INVALID_ARGUMENT', /seed: expected an integer.*1.5/);
    expectThrowsSbm(
      () => drawDigitColors(3, { split: 'val' as 'test' }),
      'UNKNOWN_NAME',
      /split: expected "train" or "test", got "val"/,
    );
  });
});

describe("the class palette: colour follows the digit's class", () => {
  it('digit k: a bright HSV(36k°, 0.6, 1) on a dark HSV(36k° + 180°, 0.75, 0.4); contrast ≥ 0.3, all ten distinct', () => {
    const fgs: number[][] = [];
    for (let k = 0; k < 10; k++) {
      const { foreground: f, background: b } = classPalette(k);
      expect(grayLevel(f)).toBeGreaterThanOrEqual(0.6 - 1e-12);
      expect(grayLevel(f)).toBeLessThanOrEqual(0.8 + 1e-12);
      expect(grayLevel(b)).toBeGreaterThanOrEqual(0.2 - 1e-12);
      expect(grayLevel(b)).toBeLessThanOrEqual(0.3 + 1e-12);
      expect(chroma(f)).toBeCloseTo(0.6, 12);
      expect(chroma(b)).toBeCloseTo(0.3, 12);
      expect(Math.max(...f)).toBeCloseTo(1, 12);
      expect(Math.max(...b)).toBeCloseTo(0.4, 12);
      fgs.push(f);
    }
    // Hue 0 is red, 120 green (k = 10/3 is not a class, so check the exact ones: 0 → red, 5 → cyan).
    expect(classPalette(0).foreground).toEqual([1, 0.4, 0.4]);
    expect(classPalette(5).foreground.map((v) => +v.toFixed(12))).toEqual([0.4, 1, 1]);
    for (let a = 0; a < 10; a++)
      for (let b = a + 1; b < 10; b++) {
        const d = Math.hypot(...fgs[a].map((v, c) => v - fgs[b][c]));
        expect(d).toBeGreaterThan(0.1);
      }
  });

  it('each colour is its class colour plus a uniform(−j, j) jitter per channel (clipped to [0, 1]), seeded', () => {
    const n = 200;
    const labels = Array.from({ length: n }, (_, i) => (i * 7) % 10);
    const j = 0.05;
    const { foreground, background } = drawDigitColors(n, { palette: 'class', seed: 3 }, labels);
    let maxDev = 0;
    for (let i = 0; i < n; i++) {
      const p = classPalette(labels[i]);
      for (let c = 0; c < 3; c++) {
        for (const [got, want] of [
          [foreground[3 * i + c], p.foreground[c]],
          [background[3 * i + c], p.background[c]],
        ]) {
          expect(got).toBeGreaterThanOrEqual(0);
          expect(got).toBeLessThanOrEqual(1);
          expect(Math.abs(got - want)).toBeLessThanOrEqual(j + 1e-12);
          if (want >= j && want <= 1 - j) maxDev = Math.max(maxDev, Math.abs(got - want));
        }
      }
    }
    // The jitter is there: P(all ≥ 600 unclipped deviations < j/2) = 2^−600.
    expect(maxDev).toBeGreaterThan(j / 2);
    const again = drawDigitColors(n, { palette: 'class', seed: 3 }, labels);
    expect(Array.from(again.foreground)).toEqual(Array.from(foreground));
    const other = drawDigitColors(n, { palette: 'class', seed: 4 }, labels);
    expect(Array.from(other.foreground)).not.toEqual(Array.from(foreground));
    const still = drawDigitColors(n, { palette: 'class', seed: 3, jitter: 0 }, labels);
    for (let i = 0; i < n; i++)
      expect(Array.from(still.background.slice(3 * i, 3 * i + 3))).toEqual(classPalette(labels[i]).background);
  });

  it('colorizeDigits with palette "class" colours each digit by its label', async () => {
    const gray = tf.tensor4d([0, 1, 0, 1, 1, 0, 1, 0], [2, 2, 2, 1]);
    const labels = tf.tensor1d([2, 9], 'int32');
    const before = countTensors();
    const d = await colorizeDigits(gray, labels, { palette: 'class', jitter: 0 });
    const v = await values(d);
    expect(countTensors()).toBe(before);
    const p2 = classPalette(2);
    const p9 = classPalette(9);
    // Image 0, pixel 0 is background (m = 0), pixel 1 foreground; image 1 the reverse.
    expect(Array.from(v.images.slice(0, 3))).toEqual(Array.from(Float32Array.from(p2.background)));
    expect(Array.from(v.images.slice(3, 6))).toEqual(Array.from(Float32Array.from(p2.foreground)));
    expect(Array.from(v.images.slice(12, 15))).toEqual(Array.from(Float32Array.from(p9.foreground)));
    tf.dispose([gray, labels]);
  });

  it('bad palette options name the argument', () => {
    expectThrowsSbm(
      () => drawDigitColors(3, { palette: 'class' }),
      'INVALID_ARGUMENT',
      /labels: expected 3 digit classes/,
    );
    expectThrowsSbm(
      () => drawDigitColors(2, { palette: 'class' }, [1, 12]),
      'INVALID_ARGUMENT',
      /labels: expected classes 0–9, got 12 at 1/,
    );
    expectThrowsSbm(
      () => drawDigitColors(2, { palette: 'hsv' as 'class' }),
      'UNKNOWN_NAME',
      /palette: expected "random" or "class", got "hsv"/,
    );
    expectThrowsSbm(
      () => drawDigitColors(2, { palette: 'class', jitter: 0.5 }, [1, 2]),
      'INVALID_ARGUMENT',
      /jitter:.*0.5/,
    );
  });
});

describeWithBackends('coloured MNIST', () => {
  // Loaded once per backend: reading MNIST parses the whole 47 MB IDX file, so the variants below colour the same
  // gray digits with colorizeDigits (the function loadColoredMnist calls after reading).
  let m: Float32Array;
  let grayLabels: number[];
  let a: Awaited<ReturnType<typeof values>>;
  let loaded: {
    shape: number[];
    dtype: string;
    labelsDtype: string;
    fgShape: number[];
    split: string;
    range: number[];
  };
  let tensorsBefore: number;

  beforeAll(async () => {
    tensorsBefore = countTensors();
    const gray = await loadMnist({ split: 'train', limit: N });
    m = (await gray.images.data()) as Float32Array;
    grayLabels = Array.from(await gray.labels.data());
    tf.dispose([gray.images, gray.labels]);
    const d = await loadColoredMnist({ n: N, seed: 5 });
    loaded = {
      shape: d.images.shape,
      dtype: d.images.dtype,
      labelsDtype: d.labels.dtype,
      fgShape: d.foreground.shape,
      split: d.split,
      range: [...d.range],
    };
    a = await values(d);
  });

  /** colorizeDigits on the same N gray digits. */
  async function variant(opts: Parameters<typeof colorizeDigits>[2]) {
    const gray = tf.tensor4d(m, [N, 28, 28, 1]);
    const labels = tf.tensor1d(grayLabels, 'int32');
    try {
      return await values(await colorizeDigits(gray, labels, opts));
    } finally {
      tf.dispose([gray, labels]);
    }
  }

  it('[n, 28, 28, 3] in [0, 1]: x = bg·(1 − m) + fg·m with the MNIST intensity m, labels passed through', () => {
    expect(loaded).toEqual({
      shape: [N, 28, 28, 3],
      dtype: 'float32',
      labelsDtype: 'int32',
      fgShape: [N, 3],
      split: 'train',
      range: [0, 1],
    });
    expect(a.labels).toEqual(grayLabels);
    const colors = drawDigitColors(N, { seed: 5 });
    expect(Array.from(a.fg)).toEqual(Array.from(Float32Array.from(colors.foreground)));
    expect(Array.from(a.bg)).toEqual(Array.from(Float32Array.from(colors.background)));
    let maxErr = 0;
    let solid = 0;
    let empty = 0;
    let inexact = 0;
    for (let i = 0; i < N; i++) {
      for (let p = 0; p < 784; p++) {
        const mi = m[i * 784 + p];
        if (mi === 1) solid++;
        if (mi === 0) empty++;
        for (let k = 0; k < 3; k++) {
          const x = a.images[3 * (i * 784 + p) + k];
          const want = colors.background[3 * i + k] * (1 - mi) + colors.foreground[3 * i + k] * mi;
          maxErr = Math.max(maxErr, Math.abs(x - want));
          // Where the stroke is saturated (m = 1) the pixel is exactly the digit colour, where m = 0 exactly the
          // background colour.
          if ((mi === 1 && x !== a.fg[3 * i + k]) || (mi === 0 && x !== a.bg[3 * i + k])) inexact++;
        }
      }
    }
    // float32 storage of a float64 value in [0, 1]: at most half an ulp of 1, 6e-8.
    expect(maxErr).toBeLessThan(1e-7);
    expect(inexact).toBe(0);
    // Both exact cases were exercised.
    expect(solid).toBeGreaterThan(0);
    expect(empty).toBeGreaterThan(N * 400);
  });

  it('range [-1, 1] is the affine image of [0, 1], with the same colours', async () => {
    const b = await variant({ seed: 5, range: [-1, 1] });
    let maxErr = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let j = 0; j < a.images.length; j++) {
      maxErr = Math.max(maxErr, Math.abs(b.images[j] - (2 * a.images[j] - 1)));
      lo = Math.min(lo, b.images[j]);
      hi = Math.max(hi, b.images[j]);
    }
    expect(maxErr).toBeLessThan(3e-7);
    expect(lo).toBeGreaterThanOrEqual(-1);
    expect(hi).toBeLessThanOrEqual(1);
    // Colours stay RGB in [0, 1] whatever the image range.
    expect(Array.from(b.fg)).toEqual(Array.from(a.fg));
  });

  it('same seed ⇒ the same bytes; another seed ⇒ other images', async () => {
    const same = await variant({ seed: 5 });
    const other = await variant({ seed: 6 });
    expect(Buffer.from(same.images.buffer).equals(Buffer.from(a.images.buffer))).toBe(true);
    expect(Buffer.from(other.images.buffer).equals(Buffer.from(a.images.buffer))).toBe(false);
  });

  it('the test split: MNIST test digits and labels, colours of its own', async () => {
    const t = await loadColoredMnist({ n: 4, seed: 5, split: 'test' });
    expect(t.split).toBe('test');
    const tv = await values(t);
    const testGray = await loadMnist({ split: 'test', limit: 4 });
    expect(tv.labels).toEqual(Array.from(await testGray.labels.data()));
    tf.dispose([testGray.images, testGray.labels]);
    expect(Array.from(tv.fg)).toEqual(
      Array.from(Float32Array.from(drawDigitColors(4, { seed: 5, split: 'test' }).foreground)),
    );
    expect(tv.fg[0]).not.toBe(a.fg[0]);
  });

  it('the colours are constant over the digit and over the background of each image', () => {
    // Pixel colour minus the background colour is (fg − bg)·m: parallel to fg − bg with a factor m ∈ [0, 1], so
    // each image's pixels lie on the one segment bg → fg (no per-pixel colour noise).
    let worst = 0;
    let tMin = Infinity;
    let tMax = -Infinity;
    for (let i = 0; i < N; i++) {
      const df = [0, 1, 2].map((k) => a.fg[3 * i + k] - a.bg[3 * i + k]);
      const len2 = df.reduce((s, x) => s + x * x, 0);
      for (let p = 0; p < 784; p++) {
        const dx = [0, 1, 2].map((k) => a.images[3 * (i * 784 + p) + k] - a.bg[3 * i + k]);
        const t = dx.reduce((s, x, k) => s + x * df[k], 0) / len2;
        tMin = Math.min(tMin, t);
        tMax = Math.max(tMax, t);
        worst = Math.max(worst, ...dx.map((x, k) => Math.abs(x - t * df[k])));
      }
    }
    expect(worst).toBeLessThan(1e-6);
    expect(tMin).toBeGreaterThanOrEqual(-1e-6);
    expect(tMax).toBeLessThanOrEqual(1 + 1e-6);
    expect(countTensors()).toBe(tensorsBefore);
  });

  it('bad options → one SbmError naming the argument; no tensors left behind', async () => {
    const before = countTensors();
    await expectRejectsSbm(
      () => loadColoredMnist({ n: 0 }),
      'INVALID_ARGUMENT',
      /loadColoredMnist: n: expected an integer >= 1, got 0/,
    );
    await expectRejectsSbm(() => loadColoredMnist({ n: 2.5 }), 'INVALID_ARGUMENT', /loadColoredMnist: n:.*2.5/);
    await expectRejectsSbm(
      () => loadColoredMnist({ split: 'validation' as 'test' }),
      'UNKNOWN_NAME',
      /loadColoredMnist: split: expected "train" or "test", got "validation"/,
    );
    await expectRejectsSbm(
      () => loadColoredMnist({ n: 2, range: [1, 0] }),
      'INVALID_ARGUMENT',
      /loadColoredMnist: range: expected \[low, high\] with low < high.*\[1,0\]/,
    );
    // Failing after the gray digits were read (bad colour option): they are disposed too.
    await expectRejectsSbm(
      () => loadColoredMnist({ n: 2, minContrast: 2 }),
      'INVALID_ARGUMENT',
      /drawDigitColors: minContrast:.*2/,
    );
    const gray = tf.tensor4d([0, 0.5, 1, 1.5], [1, 2, 2, 1]);
    const labels = tf.tensor1d([3], 'int32');
    const rgb = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
    const twoLabels = tf.tensor1d([1, 2], 'int32');
    await expectRejectsSbm(
      () => colorizeDigits(gray, labels),
      'INVALID_ARGUMENT',
      /colorizeDigits: gray: expected intensities in \[0, 1\], got 1.5 in image 0/,
    );
    await expectRejectsSbm(
      () => colorizeDigits(rgb, labels),
      'INVALID_ARGUMENT',
      /colorizeDigits: gray: expected a tensor \[n, H, W, 1\].*got tensor of shape \[1, 2, 2, 3\]/,
    );
    await expectRejectsSbm(
      () => colorizeDigits(gray, twoLabels),
      'INVALID_ARGUMENT',
      /colorizeDigits: labels: expected a tensor \[1\].*got tensor of shape \[2\]/,
    );
    // The inputs are the caller's: still alive after the failures, and nothing else is.
    expect(countTensors()).toBe(before + 4);
    expect(gray.isDisposed || labels.isDisposed).toBe(false);
    tf.dispose([gray, labels, rgb, twoLabels]);
    expect(countTensors()).toBe(before);
  });
});
