import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SeedStream, countTensors } from '@sbm/core';
import { describeWithBackends, expectRejectsSbm, expectThrowsSbm } from '@sbm/test-harness';
import {
  baselinesFor,
  denseOperator,
  downsampleOperator,
  gaussianOperator,
  grayscaleOperator,
  maskOperator,
  namedMask,
  registerBaseline,
  runBaseline,
  type LinearOperator,
} from '@sbm/inverse-problems';
import { bicubicMatrix, nearestKnownIndex, unregisterBaseline } from '../src/baselines';
import { namedPixelMask } from '../src/masks';

const U = 2 ** -24;

async function read(t: tf.Tensor): Promise<number[]> {
  const v = Array.from(await t.data());
  t.dispose();
  return v;
}

/** All known pixels at the smallest squared distance from pixel p (brute force, for the nearest-fill checks). */
function nearestByBruteForce(known: Uint8Array, H: number, W: number, p: number): number[] {
  const r = Math.floor(p / W);
  const c = p % W;
  let best = Infinity;
  let at: number[] = [];
  for (let q = 0; q < H * W; q++) {
    if (!known[q]) continue;
    const d = (Math.floor(q / W) - r) ** 2 + ((q % W) - c) ** 2;
    if (d < best) {
      best = d;
      at = [q];
    } else if (d === best) at.push(q);
  }
  return at;
}

describe('nearestKnownIndex (exact Euclidean distance transform)', () => {
  it('matches brute force on random masks (any of the tied nearest pixels)', () => {
    const s = new SeedStream(4);
    for (const [H, W, p] of [
      [1, 1, 0.5],
      [7, 5, 0.9],
      [13, 17, 0.5],
      [16, 9, 0.97],
      [4, 30, 0.2],
    ]) {
      const known = Uint8Array.from({ length: H * W }, () => +(s.uniform() > p));
      const near = nearestKnownIndex(known, H, W);
      const anyKnown = known.some((v) => v === 1);
      for (let q = 0; q < H * W; q++) {
        if (!anyKnown) {
          expect(near[q]).toBe(-1);
          continue;
        }
        expect(nearestByBruteForce(known, H, W, q), `${H}×${W} pixel ${q}`).toContain(near[q]);
      }
    }
  });
});

describe('bicubicMatrix', () => {
  it('rows sum to 1 and an integer factor-1 matrix is the identity', () => {
    const w = bicubicMatrix(5, 3);
    for (let X = 0; X < 15; X++) {
      let sum = 0;
      for (let i = 0; i < 5; i++) sum += w[X * 5 + i];
      expect(sum).toBeCloseTo(1, 14);
    }
    const id = bicubicMatrix(4, 1);
    expect(Array.from(id)).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
  });
});

describeWithBackends('baselines', () => {
  it('baselinesFor names the ones that apply to each operator', () => {
    const ops = {
      mask: maskOperator({ mask: [[1, 0]] }),
      down: downsampleOperator({ inShape: [4, 4, 1], factor: 2 }),
      gray: grayscaleOperator({ height: 2, width: 2 }),
      gauss: gaussianOperator({ inShape: [4], m: 2, seed: 1 }),
      dense: denseOperator({ inShape: [2], outShape: [1], matrix: [1, 1] }),
    };
    expect(baselinesFor(ops.mask)).toEqual(['zero-fill', 'mean-fill', 'nearest-fill', 'min-norm']);
    expect(baselinesFor(ops.down)).toEqual(['bicubic', 'min-norm']);
    expect(baselinesFor(ops.gray)).toEqual(['gray-replicated', 'min-norm']);
    expect(baselinesFor(ops.gauss)).toEqual(['min-norm']);
    // No pinv, no name of a built-in: none of the built-ins (the CT / MRI ones are named for 'radon' / 'mri').
    expect(baselinesFor(ops.dense).filter((n) => n !== 'fbp' && n !== 'zero-filled-idft')).toEqual([]);
    expect(baselinesFor(ops.dense)).not.toContain('fbp');
    for (const op of Object.values(ops)) op.dispose!();
  });

  it('zero-fill, mean-fill and nearest-fill on a hand-made pattern', async () => {
    const before = countTensors();
    // 3×3, 2 channels; channel 1 has a different mask than channel 0.
    const mask = [
      [
        [1, 0],
        [0, 0],
        [1, 1],
      ],
      [
        [0, 0],
        [0, 1],
        [0, 0],
      ],
      [
        [0, 0],
        [0, 0],
        [1, 0],
      ],
    ];
    const op = maskOperator({ mask });
    const x = tf.tensor([
      [
        [
          [1, 10],
          [2, 20],
          [3, 30],
        ],
        [
          [4, 40],
          [5, 50],
          [6, 60],
        ],
        [
          [7, 70],
          [8, 80],
          [9, 90],
        ],
      ],
    ]);
    const y = tf.tidy(() => op.forward(x));
    const zero = await read(await runBaseline('zero-fill', op, y));
    expect(zero).toEqual([1, 0, 0, 0, 3, 30, 0, 0, 0, 50, 0, 0, 0, 0, 0, 0, 9, 0]);
    // Channel 0 knows 1, 3, 9 (mean 13/3); channel 1 knows 30, 50 (mean 40).
    const m0 = 13 / 3;
    const mean = await read(await runBaseline('mean-fill', op, y));
    const wantMean = [1, 40, m0, 40, 3, 30, m0, 40, m0, 50, m0, 40, m0, 40, m0, 40, 9, 40];
    mean.forEach((v, i) => expect(v, `entry ${i}`).toBeCloseTo(wantMean[i], 5));
    // Channel 0: known (0,0)=1, (0,2)=3, (2,2)=9. Nearest: (0,1) ties 1|3; (1,0)→1; (1,1) ties all three at d² = 2;
    // (1,2)→ ties 3|9; (2,0)→ ties 1 (d²=4) | 9 (d²=4); (2,1)→9.
    // Channel 1: known (0,2)=30, (1,1)=50. (0,0)→50 (d²=2 vs 4); (0,1) ties (d²=1 both); (1,0)→50; (1,2) ties;
    // (2,0)→50; (2,1)→50; (2,2)→50 (d² 2 vs 4).
    const near = await read(await runBaseline('nearest-fill', op, y));
    const allowed: number[][] = [
      [1],
      [50],
      [1, 3],
      [30, 50],
      [3],
      [30],
      [1],
      [50],
      [1, 3, 9],
      [50],
      [3, 9],
      [30, 50],
      [1, 9],
      [50],
      [9],
      [50],
      [9],
      [50],
    ];
    near.forEach((v, i) => expect(allowed[i], `entry ${i}`).toContain(v));
    tf.dispose([x, y]);
    op.dispose!();
    expect(countTensors()).toBe(before);
  });

  it('nearest-fill on a random 70% mask takes a nearest known value everywhere (brute force)', async () => {
    const before = countTensors();
    const H = 9;
    const W = 11;
    const known = namedPixelMask('random', { height: H, width: W, ratio: 0.7, seed: 3 });
    const mask = namedMask('random', { height: H, width: W, ratio: 0.7, seed: 3 });
    const op = maskOperator({ mask });
    mask.dispose();
    // Distinct values identify the source pixel.
    const x = tf.tensor(
      Float32Array.from({ length: 2 * H * W }, (_, i) => i + 1),
      [2, H, W, 1],
    );
    const y = tf.tidy(() => op.forward(x));
    const out = await read(await runBaseline('nearest-fill', op, y));
    for (let b = 0; b < 2; b++) {
      for (let p = 0; p < H * W; p++) {
        const sources = nearestByBruteForce(known, H, W, p).map((q) => b * H * W + q + 1);
        expect(sources, `image ${b} pixel ${p}`).toContain(out[b * H * W + p]);
      }
    }
    tf.dispose([x, y]);
    op.dispose!();
    expect(countTensors()).toBe(before);
  });

  it('bicubic is exact on linear ramps away from the edges', async () => {
    const before = countTensors();
    const [H, W, k] = [24, 30, 3];
    const op = downsampleOperator({ inShape: [H, W, 2], factor: k });
    const ramp = (r: number, c: number, ch: number) => (ch === 0 ? 0.5 * r - 0.25 * c + 1 : -0.1 * r + 0.3 * c - 2);
    const vals = new Float32Array(H * W * 2);
    for (let r = 0; r < H; r++)
      for (let c = 0; c < W; c++) for (let ch = 0; ch < 2; ch++) vals[(r * W + c) * 2 + ch] = ramp(r, c, ch);
    const x = tf.tensor(vals, [1, H, W, 2]);
    const y = tf.tidy(() => op.forward(x));
    const up = await read(await runBaseline('bicubic', op, y));
    // Interior: all four taps of both 1-D interpolations inside the low-res grid, u = (X + ½)/k − ½.
    const inside = (X: number, n: number) => {
      const i0 = Math.floor((X + 0.5) / k - 0.5);
      return i0 - 1 >= 0 && i0 + 2 <= n - 1;
    };
    let checked = 0;
    let worst = 0;
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) {
        if (!inside(r, H / k) || !inside(c, W / k)) continue;
        for (let ch = 0; ch < 2; ch++) {
          worst = Math.max(worst, Math.abs(up[(r * W + c) * 2 + ch] - ramp(r, c, ch)));
          checked++;
        }
      }
    }
    // Rows 4…18 (⌊u⌋ ∈ [1, 5] of 8) × columns 4…24 (⌊u⌋ ∈ [1, 7] of 10) × 2 channels.
    expect(checked).toBe(15 * 21 * 2);
    // |ramp| ≤ 12: float32 means of 9 terms, then two 4-tap sums: ≈ 20 roundings of values ≤ 12.
    expect(worst).toBeLessThanOrEqual(20 * 12 * U * 4);
    // Near the edges clamping is not linear-exact (so the interior test is not vacuous).
    expect(Math.abs(up[0] - ramp(0, 0, 0))).toBeGreaterThan(1e-3);
    tf.dispose([x, y]);
    op.dispose!();
    expect(countTensors()).toBe(before);
  });

  it('bicubic interpolates a smooth image better than nearest upsampling (min-norm)', async () => {
    const before = countTensors();
    const [H, W, k] = [32, 32, 4];
    const op = downsampleOperator({ inShape: [H, W, 1], factor: k });
    const f = (r: number, c: number) => Math.sin((2 * Math.PI * r) / H) * Math.cos((2 * Math.PI * c) / W);
    const truth = Float32Array.from({ length: H * W }, (_, i) => f(Math.floor(i / W), i % W));
    const x = tf.tensor(truth, [1, H, W, 1]);
    const y = tf.tidy(() => op.forward(x));
    const cubic = await read(await runBaseline('bicubic', op, y));
    const nearest = await read(await runBaseline('min-norm', op, y));
    const mse = (v: number[]) => v.reduce((s, e, i) => s + (e - truth[i]) ** 2, 0) / v.length;
    expect(mse(cubic)).toBeLessThan(mse(nearest));
    tf.dispose([x, y]);
    op.dispose!();
    expect(countTensors()).toBe(before);
  });

  it('gray-replicated returns a gray image exactly; min-norm is A⁺ y with A A⁺ y = y', async () => {
    const before = countTensors();
    const gray = grayscaleOperator({ height: 2, width: 3 });
    const g = [0.1, 0.5, -0.3, 0.9, 0, 0.25];
    const x = tf.tensor(
      g.flatMap((v) => [v, v, v]),
      [1, 2, 3, 3],
    );
    const y = tf.tidy(() => gray.forward(x));
    const rec = await read(await runBaseline('gray-replicated', gray, y));
    // y = x·M[:, 0] = g·Σ M[i, 0] ≈ √3 g (M's rounding: |Σ M[i,0] − √3| ≤ 3·8u), then / √3.
    rec.forEach((v, i) => expect(Math.abs(v - g[Math.floor(i / 3)])).toBeLessThanOrEqual(30 * U));
    const gauss = gaussianOperator({ inShape: [3, 4, 1], m: 5, seed: 12 });
    const yg = tf.tensor([[1, -2, 0.5, 3, 0]]);
    const xmn = await runBaseline('min-norm', gauss, yg);
    expect(xmn.shape).toEqual([1, 3, 4, 1]);
    const back = await read(tf.tidy(() => gauss.forward(xmn)));
    // ‖y‖∞ = 3, condition of a 5×12 Gaussian ≈ 5: two 12-term float32 sums.
    back.forEach((v, i) => expect(Math.abs(v - [1, -2, 0.5, 3, 0][i])).toBeLessThanOrEqual(4 * 12 * 5 * 3 * U));
    tf.dispose([x, y, yg, xmn]);
    gray.dispose!();
    gauss.dispose!();
    expect(countTensors()).toBe(before);
  });

  it('runBaseline errors: unknown name, wrong operator, wrong y, a user baseline of the wrong shape; no leaks', async () => {
    const before = countTensors();
    const down = downsampleOperator({ inShape: [4, 4, 1], factor: 2 });
    const y = tf.zeros([1, 2, 2, 1]);
    await expectRejectsSbm(
      runBaseline('bicubc', down, y),
      'UNKNOWN_NAME',
      /^baseline: expected one of .*did you mean "bicubic"/,
    );
    await expectRejectsSbm(
      runBaseline('zero-fill', down, y),
      'UNSUPPORTED',
      /^operator: the baseline "zero-fill" applies to the operators "mask", got the operator "downsample"/,
    );
    const wrongY = tf.zeros([1, 4, 4, 1]);
    await expectRejectsSbm(
      runBaseline('bicubic', down, wrongY),
      'INVALID_SHAPE',
      /^y: expected a measurement of the downsample operator of shape \[batch, 2, 2, 1\]/,
    );
    registerBaseline('test-wrong-shape', () => tf.zeros([1, 3]), { operators: ['downsample'] });
    await expectRejectsSbm(
      runBaseline('test-wrong-shape', down, y),
      'INVALID_SHAPE',
      /^baseline "test-wrong-shape": expected a reconstruction of shape \[1, 4, 4, 1\], got tensor of shape \[1, 3\]/,
    );
    expectThrowsSbm(() => registerBaseline('test-wrong-shape', () => y), 'DUPLICATE_NAME', /already registered/);
    expectThrowsSbm(
      () => registerBaseline('bad', 3 as never),
      'INVALID_ARGUMENT',
      /^registerBaseline: fn: expected a function/,
    );
    // A user's baseline applies to the operators it names; returning y itself comes back as a copy.
    registerBaseline('test-identity', (_op, v) => v, { operators: ['downsample'], description: 'test' });
    expect(baselinesFor(down)).toContain('test-identity');
    const same = await runBaseline('test-identity', { ...down, outShape: down.inShape } as LinearOperator, wrongY);
    expect(same).not.toBe(wrongY);
    same.dispose();
    expect(wrongY.isDisposed).toBe(false);
    expect(unregisterBaseline('test-wrong-shape')).toBe(true);
    expect(unregisterBaseline('test-identity')).toBe(true);
    tf.dispose([y, wrongY]);
    down.dispose!();
    expect(countTensors()).toBe(before);
  });
});
