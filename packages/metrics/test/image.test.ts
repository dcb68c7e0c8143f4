import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import { expectThrowsSbm } from '@sbm/test-harness';
import {
  gaussianWindow1d,
  psnr,
  psnrPerImage,
  psnrSummary,
  ssim,
  ssimPerImage,
  ssimSummary,
  summarizeValues,
} from '@sbm/metrics';

/** A plain [n, h, w, c] image set from a function of (k, i, j, ch). */
function img(shape: number[], f: (k: number, i: number, j: number, ch: number) => number) {
  const [n, h, w, c] = shape.length === 4 ? shape : [1, ...shape, ...(shape.length === 2 ? [1] : [])];
  const data = new Float64Array(n * h * w * c);
  for (let k = 0; k < n; k++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) for (let ch = 0; ch < c; ch++) data[((k * h + i) * w + j) * c + ch] = f(k, i, j, ch);
  return { data, shape };
}

/**
 * The generator of tools/bench/scripts/inverse-ssim-crosscheck.mjs (smooth pattern + LCG noise), so that the golden
 * values below — printed by that script's numpy/scipy re-derivation of scikit-image — apply here.
 */
function crossImage(n: number, h: number, w: number, c: number, seed: number, smooth: number): number[] {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out: number[] = new Array(n * h * w * c);
  for (let k = 0; k < n; k++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let ch = 0; ch < c; ch++)
          out[((k * h + i) * w + j) * c + ch] =
            smooth * (0.5 + 0.4 * Math.sin(0.37 * i + 0.71 * j + 1.3 * ch + k)) + (1 - smooth) * rnd();
  return out;
}

describe('psnr', () => {
  it('is +∞ for identical images', () => {
    const a = img([8, 9, 3], (_k, i, j, c) => Math.sin(i + 2 * j + c));
    expect(psnr(a, a, { dataRange: 2 })).toBe(Infinity);
  });

  it('known noise: 10 log10(R² / MSE) with MSE = s² for a ±s checkerboard', () => {
    const s = 0.05;
    const a = img([16, 16, 1], (_k, i, j) => (i * 16 + j) / 255);
    const b = img([16, 16, 1], (_k, i, j) => (i * 16 + j) / 255 + ((i + j) % 2 === 0 ? s : -s));
    const expected = 10 * Math.log10(1 / (s * s)); // 26.0206 dB
    expect(psnr(a, b, { dataRange: 1 })).toBeCloseTo(expected, 10);
    // [low, high] is the same as its width; the range enters as R².
    expect(psnr(a, b, { dataRange: [0, 1] })).toBeCloseTo(expected, 10);
    expect(psnr(a, b, { dataRange: [-1, 1] })).toBeCloseTo(expected + 20 * Math.log10(2), 10);
  });

  it('a constant shift c: 20 log10(R / |c|)', () => {
    const a = img([5, 7], (_k, i, j) => 0.1 * i - 0.05 * j);
    const b = img([5, 7], (_k, i, j) => 0.1 * i - 0.05 * j - 0.25);
    expect(psnr(a, b, { dataRange: 1 })).toBeCloseTo(20 * Math.log10(1 / 0.25), 10);
  });

  it('batch: the mean of per-image PSNRs (not the pooled MSE), with SE', () => {
    // image k is off by a constant c_k: PSNR_k = −20 log10 c_k.
    const cs = [0.1, 0.01, 0.2];
    const a = img([3, 4, 4, 1], () => 0.5);
    const b = img([3, 4, 4, 1], (k) => 0.5 + cs[k]);
    const per = cs.map((c) => -20 * Math.log10(c));
    const got = psnrPerImage(a, b, { dataRange: 1 });
    got.forEach((v, k) => expect(v).toBeCloseTo(per[k], 10));
    const mean = per.reduce((x, y) => x + y) / 3;
    expect(psnr(a, b, { dataRange: 1 })).toBeCloseTo(mean, 10);
    const sd = Math.sqrt(per.reduce((acc, v) => acc + (v - mean) ** 2, 0) / 2);
    const sum = psnrSummary(a, b, { dataRange: 1 });
    expect(sum.n).toBe(3);
    expect(sum.se).toBeCloseTo(sd / Math.sqrt(3), 10);
    // The pooled-MSE PSNR is a different number: the test would catch a switch of convention.
    const pooled = -10 * Math.log10(cs.reduce((x, c) => x + c * c, 0) / 3);
    expect(Math.abs(sum.mean - pooled)).toBeGreaterThan(1);
  });

  it('reads tensors the same as plain arrays and leaks nothing', () => {
    const a = img([2, 6, 6, 1], (k, i, j) => Math.cos(k + i * j));
    const b = img([2, 6, 6, 1], (k, i, j) => Math.cos(k + i * j) + 0.01 * ((i + 3 * j) % 5));
    const before = countTensors();
    const ta = tf.tensor(Array.from(a.data), a.shape);
    const tb = tf.tensor(Array.from(b.data), b.shape);
    // float32 storage: equal to the float64 path to float32 accuracy, not bit-identical.
    expect(psnr(ta, tb, { dataRange: 2 })).toBeCloseTo(psnr(a, b, { dataRange: 2 }), 4);
    tf.dispose([ta, tb]);
    expect(countTensors()).toBe(before);
  });
});

describe('ssim', () => {
  it('is 1 for identical images (both windows), also for a constant image', () => {
    const a = img([20, 20, 2], (_k, i, j, c) => 0.5 + 0.4 * Math.sin(0.3 * i * (c + 1) + 0.2 * j));
    expect(ssim(a, a, { dataRange: 1 })).toBeCloseTo(1, 12);
    expect(ssim(a, a, { dataRange: 1, window: 7 })).toBeCloseTo(1, 12);
    const flat = img([12, 12], () => 0.3);
    expect(ssim(flat, flat, { dataRange: 1 })).toBeCloseTo(1, 12);
  });

  it('constant images u, u + c: the luminance term (2u(u+c) + C1) / (u² + (u+c)² + C1), C1 = (K1 R)²', () => {
    const u = 0.2;
    const c = 0.3;
    const a = img([11, 13, 1], () => u);
    const b = img([11, 13, 1], () => u + c);
    const C1 = (0.01 * 1) ** 2;
    const expected = (2 * u * (u + c) + C1) / (u * u + (u + c) ** 2 + C1);
    expect(ssim(a, b, { dataRange: 1 })).toBeCloseTo(expected, 12);
    // A larger R gives larger C1, moving SSIM towards 1: R = 255 with [0, 1] data is a classic mistake.
    const C1big = (0.01 * 255) ** 2;
    expect(ssim(a, b, { dataRange: 255 })).toBeCloseTo((2 * u * (u + c) + C1big) / (u * u + (u + c) ** 2 + C1big), 12);
    // K1 enters the same way.
    const C1k = (0.05 * 1) ** 2;
    expect(ssim(a, b, { dataRange: 1, k1: 0.05 })).toBeCloseTo(
      (2 * u * (u + c) + C1k) / (u * u + (u + c) ** 2 + C1k),
      12,
    );
  });

  it('one window position: the Gaussian-weighted formula of Wang et al. (2004), eq. 13, by hand', () => {
    for (const win of [11, 7] as const) {
      const r = (win - 1) / 2;
      const a = img([win, win, 1], (_k, i, j) => ((i * 7 + j * 3) % 10) / 10);
      const b = img([win, win, 1], (_k, i, j) => ((i * 2 + j * 5) % 9) / 9);
      const g1: number[] = [];
      for (let i = -r; i <= r; i++) g1.push(Math.exp(-(i * i) / (2 * 1.5 * 1.5)));
      const z = g1.reduce((x, y) => x + y) ** 2;
      let mx = 0;
      let my = 0;
      for (let i = 0; i < win; i++)
        for (let j = 0; j < win; j++) {
          mx += (g1[i] * g1[j] * a.data[i * win + j]) / z;
          my += (g1[i] * g1[j] * b.data[i * win + j]) / z;
        }
      let vx = 0;
      let vy = 0;
      let cxy = 0;
      for (let i = 0; i < win; i++)
        for (let j = 0; j < win; j++) {
          const wt = (g1[i] * g1[j]) / z;
          vx += wt * (a.data[i * win + j] - mx) ** 2;
          vy += wt * (b.data[i * win + j] - my) ** 2;
          cxy += wt * (a.data[i * win + j] - mx) * (b.data[i * win + j] - my);
        }
      const C1 = 1e-4;
      const C2 = 9e-4;
      const expected = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
      expect(ssim(a, b, { dataRange: 1, window: win })).toBeCloseTo(expected, 12);
    }
  });

  it('matches the numpy/scipy re-derivation of scikit-image (golden values from inverse-ssim-crosscheck.mjs)', () => {
    // scikit-image structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    // data_range=R, channel_axis=-1) computed by scipy.ndimage.gaussian_filter(truncate=3.5) + crop 5.
    const shape = [1, 28, 28, 1];
    const a = crossImage(1, 28, 28, 1, 1 + 28 + 1, 0.7);
    const b = a.map((v, i) => v + 0.2 * (crossImage(1, 1, 1, 1, i + 7, 0)[0] - 0.5) + 0.05);
    expect(ssim({ data: a, shape }, { data: b, shape }, { dataRange: 1 })).toBeCloseTo(0.9979575529861722, 13);
    expect(psnr({ data: a, shape }, { data: b, shape }, { dataRange: 1 })).toBeCloseTo(29.596245645058012, 11);
    const u = crossImage(3, 28, 28, 3, 99 + 28, 0.3).map((v) => 2 * v - 1);
    const v = crossImage(3, 28, 28, 3, 5 + 28, 0.1).map((x) => 2 * x - 1);
    const s3 = [3, 28, 28, 3];
    expect(ssim({ data: u, shape: s3 }, { data: v, shape: s3 }, { dataRange: 2 })).toBeCloseTo(0.00527477361566975, 13);
    expect(ssim({ data: u, shape: s3 }, { data: v, shape: s3 }, { dataRange: 2, window: 7 })).toBeCloseTo(
      0.003199855723941739,
      13,
    );
  });

  it('averages channels with equal weight and is symmetric', () => {
    const f0 = (i: number, j: number) => 0.5 + 0.3 * Math.sin(0.4 * i + 0.9 * j);
    const f1 = (i: number, j: number) => 0.5 + 0.3 * Math.cos(0.8 * i - 0.3 * j);
    const g0 = (i: number, j: number) => f0(i, j) + 0.1 * (((i * 5 + j) % 3) - 1);
    const g1 = (i: number, j: number) => 0.9 - f1(i, j);
    const a = img([15, 14, 2], (_k, i, j, c) => (c === 0 ? f0(i, j) : f1(i, j)));
    const b = img([15, 14, 2], (_k, i, j, c) => (c === 0 ? g0(i, j) : g1(i, j)));
    const s0 = ssim(
      img([15, 14], (_k, i, j) => f0(i, j)),
      img([15, 14], (_k, i, j) => g0(i, j)),
      { dataRange: 1 },
    );
    const s1 = ssim(
      img([15, 14], (_k, i, j) => f1(i, j)),
      img([15, 14], (_k, i, j) => g1(i, j)),
      { dataRange: 1 },
    );
    expect(s1).toBeLessThan(0); // an inverted channel: negative structure term
    expect(ssim(a, b, { dataRange: 1 })).toBeCloseTo((s0 + s1) / 2, 12);
    expect(ssim(b, a, { dataRange: 1 })).toBeCloseTo(ssim(a, b, { dataRange: 1 }), 14);
  });

  it('batch: per-image values, mean and SE', () => {
    const a = img([3, 12, 12, 1], (k, i, j) => 0.5 + 0.4 * Math.sin(0.5 * i + 0.3 * j + k));
    const b = img([3, 12, 12, 1], (k, i, j) => 0.5 + 0.4 * Math.sin(0.5 * i + 0.3 * j + k) + 0.1 * k * ((i + j) % 2));
    const per = ssimPerImage(a, b, { dataRange: 1 });
    expect(per[0]).toBeCloseTo(1, 12); // image 0 is unchanged
    for (let k = 0; k < 3; k++) {
      const one = (x: typeof a) => ({ data: x.data.slice(k * 144, (k + 1) * 144), shape: [12, 12, 1] });
      expect(per[k]).toBeCloseTo(ssim(one(a), one(b), { dataRange: 1 }), 14);
    }
    expect(per[2]).toBeLessThan(per[1]);
    const s = ssimSummary(a, b, { dataRange: 1 });
    expect(s.mean).toBeCloseTo((per[0] + per[1] + per[2]) / 3, 14);
    expect(s.se).toBeCloseTo(summarizeValues(per).se, 14);
    expect(s.se).toBeGreaterThan(0);
  });

  it('the window taps are normalised Gaussians (11 taps at radius 5)', () => {
    const g = gaussianWindow1d(5, 1.5);
    expect(g.length).toBe(11);
    expect(g.reduce((x, y) => x + y)).toBeCloseTo(1, 14);
    expect(g[5] / g[6]).toBeCloseTo(Math.exp(1 / (2 * 2.25)), 14);
  });
});

describe('image metrics: bad input', () => {
  const a = img([12, 12, 1], (_k, i, j) => (i + j) / 24);
  it('rejects missing or bad dataRange, options and windows', () => {
    expectThrowsSbm(() => psnr(a, a, {} as never), 'INVALID_ARGUMENT', /dataRange/);
    expectThrowsSbm(() => psnr(a, a, { dataRange: 0 }), 'INVALID_ARGUMENT', /dataRange.*> 0/);
    expectThrowsSbm(() => psnr(a, a, { dataRange: [1, 0] }), 'INVALID_ARGUMENT', /dataRange/);
    expectThrowsSbm(() => ssim(a, a, { dataRange: 1, window: 9 as never }), 'INVALID_ARGUMENT', /window.*7 or 11.*9/);
    expectThrowsSbm(() => ssim(a, a, { dataRange: 1, sigma: -1 }), 'INVALID_ARGUMENT', /sigma/);
    expectThrowsSbm(() => ssim(a, a, { dataRange: 1, windw: 7 } as never), 'INVALID_ARGUMENT', /windw/);
  });
  it('rejects mismatched, too-small, non-finite and malformed images', () => {
    const b = img([12, 11, 1], () => 0);
    expectThrowsSbm(() => psnr(a, b, { dataRange: 1 }), 'INVALID_SHAPE', /b: expected the shape of a/);
    const small = img([6, 6], () => 0);
    expectThrowsSbm(() => ssim(small, small, { dataRange: 1 }), 'INVALID_SHAPE', /at least 11x11/);
    const bad = img([12, 12, 1], (_k, i) => (i === 3 ? NaN : 0));
    expectThrowsSbm(() => ssim(a, bad, { dataRange: 1 }), 'NON_FINITE', /b: expected finite/);
    expectThrowsSbm(() => psnr({ data: [1, 2, 3], shape: [2, 2] }, a, { dataRange: 1 }), 'INVALID_SHAPE', /4 values/);
    expectThrowsSbm(() => psnr({ data: [1], shape: [1] }, a, { dataRange: 1 }), 'INVALID_SHAPE', /\[H, W\]/);
    expectThrowsSbm(() => psnr(42 as never, a, { dataRange: 1 }), 'INVALID_ARGUMENT', /a: expected a tf.Tensor/);
    const t = tf.zeros([12, 12, 1]);
    t.dispose();
    expectThrowsSbm(() => psnr(t, a, { dataRange: 1 }), 'INVALID_ARGUMENT', /disposed/);
    expectThrowsSbm(() => summarizeValues([]), 'INVALID_ARGUMENT', /non-empty/);
  });
});
