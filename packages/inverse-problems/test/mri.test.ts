import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { SeedStream, countTensors, randomNormal } from '@sbm/core';
import { describeWithBackends, expectThrowsSbm } from '@sbm/test-harness';
import { adjointTest, baselinesFor, createOperator, runBaseline } from '@sbm/inverse-problems';
import { mriColumnMask, mriOperator, zeroFilledInverse } from '../src/operators/mri';

// ε₃₂-scale tolerances: every map here is a product of ≤ 4 float32 matMuls of length ≤ 12 with orthonormal factors,
// so relative errors are a few ε₃₂·√n ≈ 1e-6; 1e-5 leaves a 10× margin and still fails on any real mismatch (a wrong
// sign, a missing 1/√(HW), an unmirrored column: all O(1)).
const TOL = 1e-5;

/** Naive centred DFT in float64: X̂[k, l] = Σ x[n, m] e^{−2πi((k−cH)(n−cH)/H + (l−cW)(m−cW)/W)} / √(HW). */
function naiveCentredDft(x: ArrayLike<number>, h: number, w: number): { re: number[]; im: number[] } {
  const ch = Math.floor(h / 2);
  const cw = Math.floor(w / 2);
  const re: number[] = [];
  const im: number[] = [];
  for (let k = 0; k < h; k++) {
    for (let l = 0; l < w; l++) {
      let sr = 0;
      let si = 0;
      for (let n = 0; n < h; n++) {
        for (let m = 0; m < w; m++) {
          const phi = -2 * Math.PI * (((k - ch) * (n - ch)) / h + ((l - cw) * (m - cw)) / w);
          sr += x[n * w + m] * Math.cos(phi);
          si += x[n * w + m] * Math.sin(phi);
        }
      }
      re.push(sr / Math.sqrt(h * w));
      im.push(si / Math.sqrt(h * w));
    }
  }
  return { re, im };
}

async function values(t: tf.Tensor): Promise<Float32Array> {
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

async function relDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const r = tf.tidy(() => tf.div(tf.norm(tf.sub(a, b)), tf.maximum(tf.norm(b), 1e-30)));
  return (await values(r))[0];
}

// Snapshot of mriColumnMask({ width: 28, acceleration: 4, seed: 7 }): pins the seeded mask across backends and runs.
const SNAPSHOT_28_4_7 = [5, 9, 13, 14, 15, 19, 23];

describeWithBackends('mriOperator', () => {
  it('passes the dot-product adjoint test at odd and even sizes (11×9, 8×10)', async () => {
    const before = countTensors();
    for (const [height, width] of [
      [11, 9],
      [8, 10],
    ]) {
      const op = mriOperator({ height, width, acceleration: 3, seed: 1 });
      expect(op.name).toBe('mri');
      expect(op.outShape).toEqual([height, width, 2]);
      const r = await adjointTest(op, { trials: 3, tol: TOL, seed: 5 });
      console.log(`mri ${height}×${width} adjoint relError ${r.relError.toExponential(2)}`);
      expect(r.passed).toBe(true);
      op.dispose?.();
      op.dispose?.(); // idempotent
    }
    expect(countTensors()).toBe(before);
  });

  it('is the centred unitary DFT: matches a naive float64 DFT, Parseval holds and TᵀT = I', async () => {
    const before = countTensors();
    const [h, w] = [5, 6];
    const op = mriOperator({ height: h, width: w, acceleration: 1, seed: 0 });
    const x = randomNormal([2, h, w, 1], new SeedStream(2));
    const xv = await x.data();
    const t = op.decoupled!.transform(x);
    const tv = await t.data();
    let maxErr = 0;
    for (let b = 0; b < 2; b++) {
      const ref = naiveCentredDft(xv.subarray(b * h * w, (b + 1) * h * w), h, w);
      for (let i = 0; i < h * w; i++) {
        maxErr = Math.max(maxErr, Math.abs(tv[(b * h * w + i) * 2] - ref.re[i]));
        maxErr = Math.max(maxErr, Math.abs(tv[(b * h * w + i) * 2 + 1] - ref.im[i]));
      }
    }
    expect(maxErr).toBeLessThan(TOL * 10); // absolute, entries O(1)
    // Parseval: ‖T x‖ = ‖x‖ (per image), and the DC term at (⌊H/2⌋, ⌊W/2⌋) is Σ x / √(HW), real.
    const norms = await values(tf.tidy(() => tf.stack([tf.norm(t), tf.norm(x)])));
    expect(Math.abs(norms[0] - norms[1]) / norms[1]).toBeLessThan(TOL);
    const dc = (2 * w + 3) * 2;
    let sum = 0;
    for (let i = 0; i < h * w; i++) sum += xv[i];
    expect(tv[dc]).toBeCloseTo(sum / Math.sqrt(h * w), 5);
    expect(Math.abs(tv[dc + 1])).toBeLessThan(TOL);
    const back = op.decoupled!.inverse(t);
    expect(await relDiff(back, x)).toBeLessThan(TOL);
    // Fully sampled (acceleration 1): the mask is all ones, forward = T and the zero-filled inverse is exact.
    expect(mriColumnMask({ width: w, acceleration: 1, seed: 0 })).toEqual([0, 1, 2, 3, 4, 5]);
    const y = op.forward(x);
    expect(await relDiff(y, t)).toBeLessThan(TOL);
    const zf = zeroFilledInverse(op, y);
    expect(await relDiff(zf, x)).toBeLessThan(TOL);
    for (const v of [x, t, back, y, zf]) v.dispose();
    op.dispose?.();
    expect(countTensors()).toBe(before);
  });

  it('samples a conjugate-symmetric column mask: the centre band plus random columns up to W / acceleration', async () => {
    const before = countTensors();
    for (const [width, acceleration, centerFraction, seed] of [
      [28, 4, 0.08, 7],
      [32, 4, 0.08, 3],
      [33, 2, 0.2, 9],
      [64, 8, 0.04, 1],
      [10, 100, 0.08, 2],
    ] as const) {
      const cols = mriColumnMask({ width, acceleration, centerFraction, seed });
      const c = Math.floor(width / 2);
      const set = new Set(cols);
      // Centre band: 2h + 1 ≥ max(2, round(centerFraction·W)) columns around DC.
      const nc = Math.max(2, Math.round(centerFraction * width));
      const h = Math.ceil((nc - 1) / 2);
      for (let j = c - h; j <= c + h; j++) expect(set.has(j)).toBe(true);
      // Mirror-closed: j measured ⇔ (2c − j) mod W measured.
      for (const j of cols) expect(set.has((((2 * c - j) % width) + width) % width)).toBe(true);
      // Count: round(W / R), or one less when only mirror pairs were left; never below the band.
      const target = Math.max(2 * h + 1, Math.round(width / acceleration));
      expect(cols.length === target || cols.length === target - 1).toBe(true);
      if (target > 2 * h + 1 + 1) expect(cols.length).toBeGreaterThan(2 * h + 1); // random columns were added
    }
    // The operator's mask: those columns on every row, both channels; measured entries of y equal T x there, 0 elsewhere.
    const op = mriOperator({ height: 6, width: 28, acceleration: 4, seed: 7 });
    const cols = new Set(mriColumnMask({ width: 28, acceleration: 4, seed: 7 }));
    const m = await op.decoupled!.mask.data();
    expect(op.decoupled!.mask.shape).toEqual([6, 28, 2]);
    for (let i = 0; i < 6; i++) {
      for (let j = 0; j < 28; j++) {
        for (let ch = 0; ch < 2; ch++) expect(m[(i * 28 + j) * 2 + ch]).toBe(cols.has(j) ? 1 : 0);
      }
    }
    const x = randomNormal([1, 6, 28, 1], new SeedStream(4));
    const y = await values(op.forward(x));
    const t = await values(op.decoupled!.transform(x));
    // === so that −0 (a masked negative) counts as 0.
    let mismatches = 0;
    for (let k = 0; k < y.length; k++) if (y[k] !== (m[k] ? t[k] : 0)) mismatches++;
    expect(mismatches).toBe(0);
    x.dispose();
    op.dispose?.();
    expect(countTensors()).toBe(before);
  });

  it('uses the same mask for the same seed on every backend (JS-side stream) and another for another seed', () => {
    expect(mriColumnMask({ width: 28, acceleration: 4, seed: 7 })).toEqual(SNAPSHOT_28_4_7);
    expect(mriColumnMask({ width: 28, acceleration: 4, seed: 8 })).not.toEqual(SNAPSHOT_28_4_7);
  });

  it('has A⁺ = Aᵀ exactly: AᵀA is a projection, A A⁺ A = A, and the k-space projection keeps A x = ŷ', async () => {
    const before = countTensors();
    for (const [height, width] of [
      [9, 11],
      [8, 12],
    ]) {
      const op = mriOperator({ height, width, acceleration: 3, seed: 5 });
      const x = randomNormal([2, height, width, 1], new SeedStream(8));
      const ax = op.forward(x);
      const aapax = tf.tidy(() => op.forward(op.pinv!(ax)));
      expect(await relDiff(aapax, ax)).toBeLessThan(TOL);
      // AᵀA idempotent: fails for a mask that is not mirror-closed (then Tᵀ M T is not a projection).
      const p1 = tf.tidy(() => op.adjoint(op.forward(x)));
      const p2 = tf.tidy(() => op.adjoint(op.forward(p1)));
      expect(await relDiff(p2, p1)).toBeLessThan(TOL);
      // score_sde-style replacement in k-space with ŷ = A x_true: x ← Tᵀ((1 − m) T x₀ + m ŷ) satisfies A x = ŷ.
      const xTrue = randomNormal([2, height, width, 1], new SeedStream(9));
      const yHat = op.forward(xTrue);
      const { transform, inverse, mask } = op.decoupled!;
      const proj = tf.tidy(() => inverse(tf.add(tf.mul(tf.sub(1, mask), transform(x)), tf.mul(mask, yHat))));
      const aproj = op.forward(proj);
      expect(await relDiff(aproj, yHat)).toBeLessThan(TOL);
      for (const v of [x, ax, aapax, p1, p2, xTrue, yHat, proj, aproj]) v.dispose();
      op.dispose?.();
    }
    expect(countTensors()).toBe(before);
  });

  it("zero-filled-idft is the registered baseline for 'mri' and equals Aᵀ y", async () => {
    const before = countTensors();
    const op = await createOperator('mri', { height: 8, width: 8, acceleration: 2, seed: 3 });
    expect(baselinesFor(op)).toContain('zero-filled-idft');
    const x = randomNormal([1, 8, 8, 1], new SeedStream(1));
    const y = op.forward(x);
    const zf = zeroFilledInverse(op, y);
    const viaBaseline = await runBaseline('zero-filled-idft', op, y);
    const aty = op.adjoint(y);
    expect(await relDiff(zf, aty)).toBeLessThan(TOL);
    expect(await relDiff(viaBaseline, aty)).toBeLessThan(TOL);
    // Undersampled: the zero-filled image is not x (aliasing), but its residual is unseen by A.
    expect(await relDiff(zf, x)).toBeGreaterThan(0.1);
    for (const v of [x, y, zf, viaBaseline, aty]) v.dispose();
    op.dispose?.();
    expect(countTensors()).toBe(before);
  });

  it('refuses bad options and tensors with SbmError naming the argument, without leaking', () => {
    const before = countTensors();
    const ok = { height: 8, width: 8, acceleration: 4, seed: 1 };
    expectThrowsSbm(() => mriOperator({ ...ok, acceleration: 0.5 }), 'INVALID_ARGUMENT', /^acceleration: .*>= 1.*0\.5/);
    expectThrowsSbm(() => mriOperator({ ...ok, acceleration: NaN }), 'INVALID_ARGUMENT', /^acceleration: /);
    expectThrowsSbm(() => mriOperator({ ...ok, height: 0 }), 'INVALID_ARGUMENT', /^height: /);
    expectThrowsSbm(() => mriOperator({ ...ok, width: 2.5 }), 'INVALID_ARGUMENT', /^width: /);
    expectThrowsSbm(() => mriOperator({ ...ok, centerFraction: 0 }), 'INVALID_ARGUMENT', /^centerFraction: /);
    expectThrowsSbm(() => mriOperator({ ...ok, centerFraction: 1.5 }), 'INVALID_ARGUMENT', /^centerFraction: /);
    expectThrowsSbm(() => mriOperator({ ...ok, seed: 0.5 }), 'INVALID_ARGUMENT', /^seed: /);
    expectThrowsSbm(() => mriOperator({ ...ok, seed: undefined } as never), 'INVALID_ARGUMENT', /^seed: /);
    expectThrowsSbm(() => mriOperator(null as never), 'INVALID_ARGUMENT', /mriOperator: expected options/);
    expect(countTensors()).toBe(before);
    const op = mriOperator(ok);
    const img = tf.zeros([1, 8, 8, 1]);
    const k = tf.zeros([1, 8, 8, 2]);
    expectThrowsSbm(() => op.forward(k), 'INVALID_SHAPE', /mri\.forward\(x\).*\[batch, 8, 8, 1\].*\[1, 8, 8, 2\]/);
    expectThrowsSbm(() => op.adjoint(img), 'INVALID_SHAPE', /mri\.adjoint\(y\)/);
    expectThrowsSbm(() => op.pinv!(img), 'INVALID_SHAPE', /mri\.pinv\(y\)/);
    expectThrowsSbm(() => op.decoupled!.inverse(img), 'INVALID_SHAPE', /mri\.decoupled\.inverse/);
    const notMri = {
      name: 'radon',
      inShape: [1],
      outShape: [1],
      forward: (v: tf.Tensor) => v,
      adjoint: (v: tf.Tensor) => v,
    };
    expectThrowsSbm(() => zeroFilledInverse(notMri, k), 'INVALID_ARGUMENT', /^operator: .*'radon'/);
    img.dispose();
    k.dispose();
    op.dispose?.();
    expect(countTensors()).toBe(before);
  });
});
