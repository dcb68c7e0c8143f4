import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SeedStream, countTensors } from '@sbm/core';
import { describeWithBackends, expectRejectsSbm, expectThrowsSbm } from '@sbm/test-harness';
import {
  adjointTest,
  checkOperator,
  createOperator,
  COLOR_DECOUPLE_MATRIX,
  coupleColors,
  decoupleColors,
  downsampleOperator,
  gaussianOperator,
  grayscaleOperator,
  maskOperator,
  namedMask,
  type LinearOperator,
} from '@sbm/inverse-problems';
import { denseOperator, materialize, withPinv } from '../src/operators/dense';
import { namedPixelMask } from '../src/masks';
import { pseudoInverse, symmetricEigen, cholesky, choleskySolveInPlace, seededNormals } from '../src/linalg';
import { T, inv, mul, type M } from './helpers';

/** float32 unit roundoff. */
const U = 2 ** -24;

// ---------- independent float64 helpers for the checks (no eigen-decomposition) ----------

const toRows = (d: ArrayLike<number>, rows: number, cols: number): M =>
  Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (__, j) => d[i * cols + j]));
const maxAbs = (a: M): number => Math.max(...a.flat().map(Math.abs));
const sub = (a: M, b: M): M => a.map((r, i) => r.map((v, j) => v - b[i][j]));

/**
 * A random [rows × cols] matrix A = U V of rank `rank` (Gaussian factors) and its pseudo-inverse by the full-rank
 * factorisation formula A⁺ = Vᵀ (V Vᵀ)⁻¹ (Uᵀ U)⁻¹ Uᵀ (independent of any eigen-decomposition).
 */
function lowRankWithPinv(rows: number, cols: number, rank: number, seed: number): { a: M; pinv: M } {
  const s = new SeedStream(seed);
  const u = toRows(seededNormals(s, rows * rank), rows, rank);
  const v = toRows(seededNormals(s, rank * cols), rank, cols);
  return { a: mul(u, v), pinv: mul(mul(mul(T(v), inv(mul(v, T(v)))), inv(mul(T(u), u))), T(u)) };
}

describe('linalg (float64)', () => {
  it('symmetricEigen reconstructs a random symmetric matrix with orthonormal vectors', () => {
    for (const n of [1, 2, 5, 17]) {
      const s = new SeedStream(n);
      const b = toRows(seededNormals(s, n * n), n, n);
      const a = mul(b, T(b)).map((r, i) => r.map((v, j) => v - (i === j ? 3 : 0))); // indefinite
      const { values, vectors } = symmetricEigen(Float64Array.from(a.flat()), n);
      const V = toRows(vectors, n, n); // row j = eigenvector j
      const recon = mul(
        T(V),
        V.map((r, j) => r.map((v) => v * values[j])),
      );
      const scale = maxAbs(a);
      expect(maxAbs(sub(recon, a)) / scale).toBeLessThan(1e-12);
      const gram = mul(V, T(V));
      expect(
        maxAbs(
          sub(
            gram,
            toRows(
              Float64Array.from({ length: n * n }, (_, k) => +(k % (n + 1) === 0)),
              n,
              n,
            ),
          ),
        ),
      ).toBeLessThan(1e-12);
      for (let j = 1; j < n; j++) expect(values[j]).toBeGreaterThanOrEqual(values[j - 1]);
    }
  });

  it('symmetricEigen of a hand-checked 2×2 and a diagonal with repeated values', () => {
    // [[2, 1], [1, 2]]: eigenvalues 1 and 3, eigenvectors (1, −1)/√2 and (1, 1)/√2.
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    expect(values[0]).toBeCloseTo(1, 14);
    expect(values[1]).toBeCloseTo(3, 14);
    expect(Math.abs(vectors[0] + vectors[1])).toBeLessThan(1e-14);
    expect(Math.abs(vectors[2] - vectors[3])).toBeLessThan(1e-14);
    const d = symmetricEigen(Float64Array.from([4, 0, 0, 0, 1, 0, 0, 0, 4]), 3);
    expect(Array.from(d.values)).toEqual([1, 4, 4]);
  });

  // Timing lives in a bench (this machine is shared); here only the accuracy at a size where tridiagonalisation matters.
  it('symmetricEigen of a 150×150 random symmetric matrix: A v = λ v for the extreme pairs', () => {
    const n = 150;
    const s = new SeedStream(7);
    const a = seededNormals(s, n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i];
    const { values, vectors } = symmetricEigen(a, n);
    for (const j of [0, n - 1]) {
      let err = 0;
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let l = 0; l < n; l++) av += a[i * n + l] * vectors[j * n + l];
        err = Math.max(err, Math.abs(av - values[j] * vectors[j * n + i]));
      }
      // Backward-stable: residual ≈ n ε ‖A‖ with ‖A‖ ≈ 2√n ≈ 25.
      expect(err).toBeLessThan(1e-11);
    }
  });

  it('cholesky solves an SPD system and rejects a singular one naming the argument', () => {
    const g = Float64Array.from([4, 2, 2, 3]);
    const l = cholesky(g, 2);
    const x = choleskySolveInPlace(l, 2, Float64Array.from([2, 1]), 1);
    // [[4, 2], [2, 3]] x = (2, 1): x = (0.5, 0).
    expect(x[0]).toBeCloseTo(0.5, 14);
    expect(x[1]).toBeCloseTo(0, 14);
    expectThrowsSbm(
      () => cholesky(Float64Array.from([1, 1, 1, 1]), 2, 'gram'),
      'INVALID_ARGUMENT',
      /^gram: .*positive definite/,
    );
  });

  it('pseudoInverse of hand-checked matrices', () => {
    // A = [[1, 0], [0, 2], [0, 0]]: A⁺ = [[1, 0, 0], [0, 0.5, 0]].
    const p = pseudoInverse(Float64Array.from([1, 0, 0, 2, 0, 0]), 3, 2);
    expect(p.rank).toBe(2);
    const want = [1, 0, 0, 0, 0.5, 0];
    p.pinv.forEach((v, i) => expect(v).toBeCloseTo(want[i], 13));
    // Rank 1: A = [[1, 1], [1, 1]] = 2 u uᵀ (u = (1, 1)/√2): A⁺ = u uᵀ / 2 = all 0.25.
    const q = pseudoInverse(Float64Array.from([1, 1, 1, 1]), 2, 2);
    expect(q.rank).toBe(1);
    q.pinv.forEach((v) => expect(v).toBeCloseTo(0.25, 13));
    // The zero singular value comes back as √(rounding of λ ≈ 0) ≈ √(n ε) σ_max ≈ 4e-8: the Gram route squares A.
    expect(q.singularValues[0]).toBeCloseTo(2, 13);
    expect(q.singularValues[1]).toBeLessThan(1e-7);
    // Wide: A = [1, 2] (1×2): A⁺ = Aᵀ / 5.
    const r = pseudoInverse(Float64Array.from([1, 2]), 1, 2);
    expect(r.pinv[0]).toBeCloseTo(0.2, 14);
    expect(r.pinv[1]).toBeCloseTo(0.4, 14);
  });

  it('pseudoInverse satisfies the Penrose conditions on rank-deficient wide and tall matrices', () => {
    for (const [rows, cols, rank] of [
      [5, 9, 3],
      [11, 4, 2],
      [6, 6, 6],
    ]) {
      const { a, pinv: want } = lowRankWithPinv(rows, cols, rank, rows * 100 + cols);
      const { pinv, rank: r } = pseudoInverse(Float64Array.from(a.flat()), rows, cols);
      expect(r).toBe(rank);
      const P = toRows(pinv, cols, rows);
      expect(maxAbs(sub(P, want)) / maxAbs(want)).toBeLessThan(1e-9);
      const scaleA = maxAbs(a);
      const scaleP = maxAbs(P);
      expect(maxAbs(sub(mul(mul(a, P), a), a)) / scaleA).toBeLessThan(1e-9);
      expect(maxAbs(sub(mul(mul(P, a), P), P)) / scaleP).toBeLessThan(1e-9);
      // A A⁺ and A⁺ A symmetric.
      const ap = mul(a, P);
      const pa = mul(P, a);
      expect(maxAbs(sub(ap, T(ap)))).toBeLessThan(1e-9);
      expect(maxAbs(sub(pa, T(pa)))).toBeLessThan(1e-9);
    }
  });

  it('seededNormals: same seed, same numbers; mean and variance within 4 standard errors', () => {
    const a = seededNormals(new SeedStream(3), 20001);
    const b = seededNormals(new SeedStream(3), 20001);
    expect(Array.from(a)).toEqual(Array.from(b));
    const n = a.length;
    const mean = a.reduce((s, v) => s + v, 0) / n;
    const varr = a.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
    // SE of the mean 1/√n; of the variance √(2/(n−1)) for a normal.
    expect(Math.abs(mean)).toBeLessThan(4 / Math.sqrt(n));
    expect(Math.abs(varr - 1)).toBeLessThan(4 * Math.sqrt(2 / (n - 1)));
  });
});

/** ‖A A⁺ A x − A x‖ and ‖A⁺ A A⁺ y − A⁺ y‖ relative to ‖A x‖ and ‖A⁺ y‖, for random x, y. */
async function penroseErrors(op: LinearOperator, seed: number): Promise<{ first: number; second: number }> {
  const s = new SeedStream(seed);
  const r = tf.tidy(() => {
    const x = tf.tensor(Float32Array.from(seededNormals(s, 2 * op.inShape.reduce((a, b) => a * b, 1))), [
      2,
      ...op.inShape,
    ]);
    const y = tf.tensor(Float32Array.from(seededNormals(s, 2 * op.outShape.reduce((a, b) => a * b, 1))), [
      2,
      ...op.outShape,
    ]);
    const ax = op.forward(x);
    const first = tf.div(tf.norm(tf.sub(op.forward(op.pinv!(ax)), ax)), tf.norm(ax));
    const py = op.pinv!(y);
    const second = tf.div(tf.norm(tf.sub(op.pinv!(op.forward(py)), py)), tf.norm(py));
    return tf.stack([first, second]);
  });
  const v = await r.data();
  r.dispose();
  return { first: v[0], second: v[1] };
}

describeWithBackends('dense operators', () => {
  it('denseOperator: forward and adjoint are A x and Aᵀ y on the flattened signal; adjoint test passes', async () => {
    const before = countTensors();
    // A [2 × 3] on inShape [3, 1] → outShape [2].
    const op = denseOperator({
      inShape: [3, 1],
      outShape: [2],
      matrix: [
        [1, 2, 3],
        [-1, 0, 0.5],
      ],
    });
    const ax = tf.tidy(() => op.forward(tf.tensor([[[1], [1], [2]]])));
    expect(Array.from(await ax.data())).toEqual([9, 0]);
    const aty = tf.tidy(() => op.adjoint(tf.tensor([[1, 2]])));
    expect(aty.shape).toEqual([1, 3, 1]);
    expect(Array.from(await aty.data())).toEqual([-1, 2, 4]);
    tf.dispose([ax, aty]);
    expect((await adjointTest(op)).passed).toBe(true);
    op.dispose!();
    op.dispose!();
    expect(countTensors()).toBe(before);
  });

  it('denseOperator rejects a matrix of the wrong size or with NaN, naming matrix', () => {
    expectThrowsSbm(
      () => denseOperator({ inShape: [3], outShape: [2], matrix: [1, 2, 3] }),
      'INVALID_SHAPE',
      /^matrix: expected 2 × 3 = 6/,
    );
    expectThrowsSbm(
      () => denseOperator({ inShape: [2], outShape: [2], matrix: [[1, 2], [3]] }),
      'INVALID_SHAPE',
      /^matrix: expected 2 rows of 2/,
    );
    expectThrowsSbm(
      () => denseOperator({ inShape: [2], outShape: [1], matrix: [1, NaN] }),
      'NON_FINITE',
      /^matrix: .*NaN/,
    );
    expectThrowsSbm(() => denseOperator({ inShape: [0], outShape: [1], matrix: [] }), 'INVALID_ARGUMENT', /^inShape: /);
  });

  it('materialize reads back an operator given only as functions', async () => {
    const a = [
      [1, 2, 0, -1, 3],
      [0, 0, 4, 1, 1],
      [2, -3, 1, 0, 0],
    ];
    const inner = denseOperator({ inShape: [5], outShape: [3], matrix: a });
    // Hide the matrix: only forward/adjoint functions remain.
    const fnOnly: LinearOperator = {
      name: 'fn',
      inShape: [5],
      outShape: [3],
      forward: (x) => inner.forward(x),
      adjoint: (y) => inner.adjoint(y),
    };
    const before = countTensors();
    const m = await materialize(fnOnly);
    expect(countTensors()).toBe(before);
    expect(m.rows).toBe(3);
    expect(m.cols).toBe(5);
    expect(Array.from(m.data)).toEqual(a.flat());
    inner.dispose!();
  });

  it('materialize disposes its chunk when forward throws', async () => {
    const before = countTensors();
    const bad: LinearOperator = {
      name: 'bad',
      inShape: [4],
      outShape: [2],
      forward: () => {
        throw new Error('user forward failed');
      },
      adjoint: (y) => y,
    };
    await expect(materialize(bad)).rejects.toThrow('user forward failed');
    expect(countTensors()).toBe(before);
  });

  it('withPinv: hand-checked small matrix, then a rank-deficient one (Penrose conditions)', async () => {
    const before = countTensors();
    const op = await withPinv(
      denseOperator({
        inShape: [2],
        outShape: [3],
        matrix: [
          [1, 0],
          [0, 2],
          [0, 0],
        ],
      }),
    );
    const p = tf.tidy(() => op.pinv!(tf.tensor([[1, 4, 9]])));
    // A⁺ = [[1, 0, 0], [0, 0.5, 0]]: A⁺ (1, 4, 9) = (1, 2).
    expect(Array.from(await p.data())).toEqual([1, 2]);
    p.dispose();
    op.dispose!();

    // Rank 2 of [5 × 7], given through functions only (materialize → eigen path).
    const { a, pinv: want } = lowRankWithPinv(5, 7, 2, 42);
    const inner = denseOperator({ inShape: [7], outShape: [5], matrix: a });
    const fnOnly: LinearOperator = {
      name: 'fn',
      inShape: [7],
      outShape: [5],
      forward: (x) => inner.forward(x),
      adjoint: (y) => inner.adjoint(y),
      dispose: () => inner.dispose!(),
    };
    const q = await withPinv(fnOnly);
    const e = await penroseErrors(q, 5);
    // float32 application of A and A⁺ (a few roundings of sums of ≤ 7 terms, u = 6e-8) on a well-conditioned rank-2 part.
    expect(e.first).toBeLessThan(1e-5);
    expect(e.second).toBeLessThan(1e-5);
    // The Penrose conditions above also hold for non-minimum-norm generalised inverses; the matrix itself against the
    // full-rank factorisation formula pins A⁺ down (float32 storage: relative 1e-6).
    const eye = tf.eye(5);
    const pm = tf.tidy(() => q.pinv!(eye)); // row i = A⁺ e_i = column i of A⁺
    const got = toRows(await pm.data(), 5, 7);
    tf.dispose([eye, pm]);
    expect(maxAbs(sub(T(got), want)) / maxAbs(want)).toBeLessThan(1e-5);
    q.dispose!();
    q.dispose!();
    expect(countTensors()).toBe(before);
  });

  it('withPinv of a tall Gaussian [120 × 60] operator (the AᵀA branch)', async () => {
    const s = new SeedStream(11);
    const rows = 120;
    const cols = 60;
    const op = denseOperator({ inShape: [6, 10], outShape: [rows], matrix: seededNormals(s, rows * cols) });
    const q = await withPinv(op);
    const e = await penroseErrors(q, 6);
    // Full column rank, condition ≈ (√120 + √60)/(√120 − √60) ≈ 6: float32 sums of 60–120 terms, a few u·√n each.
    expect(e.first).toBeLessThan(1e-5);
    expect(e.second).toBeLessThan(1e-5);
    q.dispose!();
  });
});

// ---------- the measurement operators ----------

/** Random x [b, ...shape] in float32 from float64 JS normals. */
function randomTensor(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from(seededNormals(new SeedStream(seed), n)), shape);
}

/** A fixed 0/1 mask [5, 7, 3] with both values in every channel (JS, seeded). */
function oddMask(): number[][][] {
  const s = new SeedStream(99);
  return Array.from({ length: 5 }, () =>
    Array.from({ length: 7 }, () => Array.from({ length: 3 }, () => +(s.uniform() < 0.6))),
  );
}

/**
 * Every built-in operator at odd shapes, with the largest inner dimension of its float32 sums and its condition
 * number (σ_max/σ_min of the float64 matrix): the bound for the Penrose residuals below is
 * 4 applications × terms × κ × u (standard float32 summation bounds, worst case linear in the number of terms).
 */
function odd(): { op: LinearOperator; terms: number; kappa: number }[] {
  const gaussian = gaussianOperator({ inShape: [5, 3, 1], m: 7, seed: 5 });
  const sv = pseudoInverse(gaussian.matrix, 7, 15).singularValues;
  return [
    { op: maskOperator({ mask: oddMask() }), terms: 1, kappa: 1 },
    { op: grayscaleOperator({ height: 5, width: 3 }), terms: 3, kappa: 1 },
    { op: downsampleOperator({ inShape: [6, 9, 2], factor: 3 }), terms: 9, kappa: 1 },
    { op: gaussian, terms: 15, kappa: sv[0] / sv[sv.length - 1] },
  ];
}

/** What the first backend saw, compared on the next ones (describeWithBackends runs the suites in order). */
const firstBackend = new Map<string, number[]>();
function sameOnEveryBackend(key: string, values: ArrayLike<number>): void {
  const v = Array.from(values);
  const seen = firstBackend.get(key);
  if (seen === undefined) firstBackend.set(key, v);
  else expect(v).toEqual(seen);
}

describeWithBackends('measurement operators', ({ backend }) => {
  it('every operator passes the dot-product test and checkOperator at odd shapes', async () => {
    const before = countTensors();
    for (const { op } of odd()) {
      const r = await adjointTest(op, { trials: 3, seed: 17 });
      expect(r.relError, `${op.name} [${backend}]: ${r.relError}`).toBeLessThan(1e-5);
      expect(await checkOperator(op)).toBe(op);
      op.dispose!();
    }
    expect(countTensors()).toBe(before);
  });

  it('the gradient of ½‖A x‖² through forward is Aᵀ A x (what DPS differentiates)', async () => {
    const before = countTensors();
    for (const { op, terms } of odd()) {
      const r = tf.tidy(() => {
        const x = randomTensor([2, ...op.inShape], 31);
        const g = tf.grad((v: tf.Tensor) => tf.mul(0.5, tf.sum(tf.square(op.forward(v)))))(x);
        const want = op.adjoint(op.forward(x));
        return tf.stack([tf.max(tf.abs(tf.sub(g, want))), tf.max(tf.abs(want))]);
      });
      const [err, scale] = await r.data();
      r.dispose();
      // Same products, possibly in another summation order: a few roundings of `terms`-term sums.
      expect(err, op.name).toBeLessThanOrEqual(4 * terms * U * Math.max(scale, 1));
      op.dispose!();
    }
    expect(countTensors()).toBe(before);
  });

  it('withPinv keeps the operator’s decoupled form and data members; its dispose frees both', async () => {
    const before = countTensors();
    const base = maskOperator({ mask: [[1, 0, 1]] });
    const op = await withPinv(base);
    expect(op.decoupled).toBe(base.decoupled);
    expect((op as typeof base).mask).toBe(base.mask);
    const p = tf.tidy(() => op.pinv!(tf.tensor([[[2, 3, 4]]])));
    expect(Array.from(await p.data())).toEqual([2, 0, 4]);
    p.dispose();
    op.dispose!();
    expect(base.mask.isDisposed).toBe(true);
    expect(countTensors()).toBe(before);
  });

  it('checkOperator rejects a deliberately wrong adjoint naming operator, without leaking', async () => {
    const before = countTensors();
    const down = downsampleOperator({ inShape: [4, 6, 1], factor: 2 });
    // Nearest upsampling without the 1/k² of the adjoint (that is the pinv, not Aᵀ).
    const wrong: LinearOperator = { ...down, adjoint: (y) => down.pinv!(y) };
    await expectRejectsSbm(checkOperator(wrong), 'INVALID_ARGUMENT', /^operator: adjoint fails the dot-product test/);
    const gauss = gaussianOperator({ inShape: [6], m: 3, seed: 1 });
    const transposedWrong: LinearOperator = { ...gauss, adjoint: (y) => gauss.pinv!(y) };
    await expectRejectsSbm(checkOperator(transposedWrong, { argument: 'A' }), 'INVALID_ARGUMENT', /^A: adjoint fails/);
    gauss.dispose!();
    expect(countTensors()).toBe(before);
  });

  it('pinv satisfies A A⁺ A = A and A⁺ A A⁺ = A⁺ within float32 bounds', async () => {
    const before = countTensors();
    for (const { op, terms, kappa } of odd()) {
      const e = await penroseErrors(op, 23);
      const bound = 4 * terms * kappa * U;
      expect(e.first, `${op.name}: ‖AA⁺Ax − Ax‖/‖Ax‖ = ${e.first}, bound ${bound}`).toBeLessThanOrEqual(bound);
      expect(e.second, `${op.name}: ‖A⁺AA⁺y − A⁺y‖/‖A⁺y‖ = ${e.second}, bound ${bound}`).toBeLessThanOrEqual(bound);
      op.dispose!();
    }
    expect(countTensors()).toBe(before);
  });

  it('decoupled forms reproduce forward: mask ⊙ T(x) = A x (up to layout) and T⁻¹ T = I', async () => {
    const before = countTensors();
    const mask = maskOperator({ mask: oddMask() });
    const gray = grayscaleOperator({ height: 5, width: 3 });
    const r = tf.tidy(() => {
      const x = randomTensor([2, 5, 7, 3], 1);
      const d = mask.decoupled!;
      const maskErr = tf.max(tf.abs(tf.sub(tf.mul(d.transform(x), d.mask), mask.forward(x))));
      const maskRound = tf.max(tf.abs(tf.sub(d.inverse(d.transform(x)), x)));
      const xg = randomTensor([2, 5, 3, 3], 2);
      const g = gray.decoupled!;
      const masked = tf.mul(g.transform(xg), g.mask);
      const ax = gray.forward(xg);
      const grayErr = tf.max(tf.abs(tf.sub(tf.slice(masked, [0, 0, 0, 0], [-1, -1, -1, 1]), ax)));
      const grayRest = tf.max(tf.abs(tf.slice(masked, [0, 0, 0, 1], [-1, -1, -1, 2])));
      const grayRound = tf.max(tf.abs(tf.sub(g.inverse(g.transform(xg)), xg)));
      const scale = tf.max(tf.abs(xg));
      return tf.stack([maskErr, maskRound, grayErr, grayRest, grayRound, scale]);
    });
    const [maskErr, maskRound, grayErr, grayRest, grayRound, scale] = await r.data();
    r.dispose();
    expect(maskErr).toBe(0);
    expect(maskRound).toBe(0);
    // Both sides are the same 3-term dot product per pixel; only the kernels' summation order may differ.
    expect(grayErr).toBeLessThanOrEqual(3 * 3 * U * scale);
    expect(grayRest).toBe(0);
    // M·M⁻¹ in float32: two 3-term sums.
    expect(grayRound).toBeLessThanOrEqual(2 * 3 * 3 * U * scale);
    mask.dispose!();
    gray.dispose!();
    expect(countTensors()).toBe(before);
  });

  it("the colour matrix is score_sde's, orthonormal to float32 rounding, with column 0 = (1, 1, 1)/√3", async () => {
    const m = COLOR_DECOUPLE_MATRIX.map((r) => [...r]);
    const mmt = mul(m, T(m));
    let off = 0;
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) off = Math.max(off, Math.abs(mmt[i][j] - +(i === j)));
    // score_sde's digits are a float32-computed orthogonal matrix printed to 8 digits: a few roundings (u each) per
    // entry, so |M Mᵀ − I| of several u, not machine-exact. 8u = 4.8e-7 allows four roundings in each factor.
    expect(off).toBeLessThanOrEqual(8 * U);
    expect(off).toBeGreaterThan(0); // the digits really are the rounded ones, not an exact orthogonal matrix
    const mtm = mul(T(m), m);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) expect(Math.abs(mtm[i][j] - +(i === j))).toBeLessThanOrEqual(8 * U);
    for (const r of m) expect(Math.abs(r[0] - 1 / Math.sqrt(3))).toBeLessThanOrEqual(8 * U);
    // Gray pixels (R = G = B = g) decouple to (√3 g, ≈0, ≈0): the measurement of a gray image g is √3·g.
    const before = countTensors();
    const out = tf.tidy(() => decoupleColors(tf.tensor([[0.5, 0.5, 0.5]])));
    const v = await out.data();
    out.dispose();
    expect(v[0]).toBeCloseTo(Math.sqrt(3) * 0.5, 6);
    expect(Math.abs(v[1])).toBeLessThan(1e-6);
    expect(Math.abs(v[2])).toBeLessThan(1e-6);
    expectThrowsSbm(
      () => tf.tidy(() => coupleColors(tf.zeros([2, 4]))),
      'INVALID_SHAPE',
      /^coupleColors: x: expected a tensor with 3 channels/,
    );
    expect(countTensors()).toBe(before);
  });

  it('mask operator: y = m ⊙ x with unknowns 0, broadcast [H, W] masks, errors naming mask, dispose frees', async () => {
    const before = countTensors();
    const op = maskOperator({
      mask: [
        [1, 0],
        [0, 1],
      ],
      inShape: [2, 2, 2],
    });
    expect(op.inShape).toEqual([2, 2, 2]);
    expect(op.outShape).toEqual([2, 2, 2]);
    const y = tf.tidy(() =>
      op.forward(
        tf.tensor([
          [
            [
              [1, 2],
              [3, 4],
            ],
            [
              [5, 6],
              [7, 8],
            ],
          ],
        ]),
      ),
    );
    expect(Array.from(await y.data())).toEqual([1, 2, 0, 0, 0, 0, 7, 8]);
    y.dispose();
    expectThrowsSbm(
      () => tf.tidy(() => op.forward(tf.zeros([1, 2, 2]))),
      'INVALID_SHAPE',
      /^x: expected a signal .* of shape \[batch, 2, 2, 2\], got \[1, 2, 2\]/,
    );
    op.dispose!();
    op.dispose!();
    expect(countTensors()).toBe(before);
    // The user's tensor is copied, not adopted.
    const user = tf.tensor([1, 0, 1]);
    const op2 = maskOperator({ mask: user });
    op2.dispose!();
    expect(user.isDisposed).toBe(false);
    user.dispose();
    expectThrowsSbm(
      () => maskOperator({ mask: [[1, 0.5]] }),
      'INVALID_ARGUMENT',
      /^mask: expected values exactly 0 or 1 .*got 0.5 at flat index 1/,
    );
    expectThrowsSbm(() => maskOperator({ mask: [1, NaN] }), 'INVALID_ARGUMENT', /^mask: .*got NaN/);
    const scalar = tf.scalar(1);
    expectThrowsSbm(() => maskOperator({ mask: scalar }), 'INVALID_SHAPE', /^mask: expected a mask of rank ≥ 1/);
    scalar.dispose();
    expectThrowsSbm(
      () => maskOperator({ mask: [1, 0], inShape: [3, 2] }),
      'INVALID_SHAPE',
      /^mask: expected shape \[3, 2\] or \[3\]/,
    );
    expectThrowsSbm(
      () => maskOperator({ mask: 'center-box' }),
      'INVALID_ARGUMENT',
      /^mask: expected a tensor or nested array/,
    );
    expect(countTensors()).toBe(before);
  });

  it('downsample: k×k means, pinv = nearest upsampling, clear error when H or W is not divisible', async () => {
    const before = countTensors();
    const op = downsampleOperator({ inShape: [2, 4, 1], factor: 2 });
    expect(op.outShape).toEqual([1, 2, 1]);
    const x = tf.tensor([1, 2, 5, 6, 3, 4, 7, 8], [1, 2, 4, 1]);
    const y = tf.tidy(() => op.forward(x));
    expect(Array.from(await y.data())).toEqual([2.5, 6.5]);
    const up = tf.tidy(() => op.pinv!(y));
    expect(Array.from(await up.data())).toEqual([2.5, 2.5, 6.5, 6.5, 2.5, 2.5, 6.5, 6.5]);
    const adj = tf.tidy(() => op.adjoint(y));
    expect(Array.from(await adj.data())).toEqual([2.5, 2.5, 6.5, 6.5, 2.5, 2.5, 6.5, 6.5].map((v) => v / 4));
    tf.dispose([x, y, up, adj]);
    expectThrowsSbm(
      () => downsampleOperator({ inShape: [6, 7, 3], factor: 2 }),
      'INVALID_ARGUMENT',
      /^factor: expected a divisor of both the height 6 and the width 7 .*got 2/,
    );
    expectThrowsSbm(
      () => downsampleOperator({ inShape: [6, 6], factor: 2 }),
      'INVALID_ARGUMENT',
      /^inShape: expected 3 positive integers/,
    );
    expectThrowsSbm(
      () => downsampleOperator({ inShape: [6, 6, 1], factor: 1.5 }),
      'INVALID_ARGUMENT',
      /^factor: expected a positive integer/,
    );
    expect(countTensors()).toBe(before);
  });

  it('gaussian: same seed ⇒ same matrix (and on every backend); N(0, 1/m) entries within 4 standard errors', async () => {
    const before = countTensors();
    const a = gaussianOperator({ inShape: [4, 5, 1], ratio: 0.3, seed: 2024 });
    const b = gaussianOperator({ inShape: [4, 5, 1], ratio: 0.3, seed: 2024 });
    const c = gaussianOperator({ inShape: [4, 5, 1], ratio: 0.3, seed: 2025 });
    expect(a.m).toBe(6);
    expect(a.outShape).toEqual([6]);
    expect(Array.from(a.matrix)).toEqual(Array.from(b.matrix));
    expect(Array.from(a.matrix)).not.toEqual(Array.from(c.matrix));
    // What the backend applies: A e_j reads back A's float32 rounding exactly (one product with 1, the rest with 0).
    const hidden: LinearOperator = {
      name: 'g',
      inShape: a.inShape,
      outShape: a.outShape,
      forward: (x) => a.forward(x),
      adjoint: (y) => a.adjoint(y),
    };
    const applied = await materialize(hidden);
    expect(Array.from(applied.data)).toEqual(Array.from(Float32Array.from(a.matrix)));
    sameOnEveryBackend('gaussian forward', applied.data);
    // Moments of m·n = 12000 entries: mean 0 (SE 1/√(m N)), variance 1/m (SE √(2/N)/m).
    const big = gaussianOperator({ inShape: [400], m: 30, seed: 3 });
    const N = big.matrix.length;
    const mean = big.matrix.reduce((s, v) => s + v, 0) / N;
    const varr = big.matrix.reduce((s, v) => s + (v - mean) ** 2, 0) / (N - 1);
    expect(Math.abs(mean)).toBeLessThan(4 / Math.sqrt(30 * N));
    expect(Math.abs(varr - 1 / 30)).toBeLessThan((4 * Math.sqrt(2 / N)) / 30);
    for (const op of [a, b, c, big]) op.dispose!();
    expectThrowsSbm(() => gaussianOperator({ inShape: [4], seed: 1 }), 'INVALID_ARGUMENT', /^m: .*got neither/);
    expectThrowsSbm(
      () => gaussianOperator({ inShape: [4], m: 5, seed: 1 }),
      'INVALID_ARGUMENT',
      /^m: expected an integer in \[1, 4\]/,
    );
    expectThrowsSbm(
      () => gaussianOperator({ inShape: [4], m: 2, ratio: 0.5, seed: 1 }),
      'INVALID_ARGUMENT',
      /^m: expected either m or ratio/,
    );
    expectThrowsSbm(
      () => gaussianOperator({ inShape: [4], m: 2 } as never),
      'INVALID_ARGUMENT',
      /^seed: expected a safe integer/,
    );
    expect(countTensors()).toBe(before);
  });

  it('namedMask: the box, the halves, and a seeded random mask that is the same on every backend', async () => {
    const before = countTensors();
    const read = async (t: tf.Tensor) => {
      const v = Array.from(await t.data());
      t.dispose();
      return v;
    };
    const box = await read(namedMask('center-box', { height: 28, width: 28 }));
    expect(box.length).toBe(784);
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        const inside = r >= 7 && r < 21 && c >= 7 && c < 21;
        expect(box[r * 28 + c], `(${r}, ${c})`).toBe(inside ? 0 : 1);
      }
    }
    const halves: [string, (r: number, c: number) => boolean][] = [
      ['left-half', (_r, c) => c < 2],
      ['right-half', (_r, c) => c >= 3],
      ['top-half', (r) => r < 2],
      ['bottom-half', (r) => r >= 2],
    ];
    for (const [name, missing] of halves) {
      const v = await read(namedMask(name, { height: 4, width: 5, channels: 2 }));
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 5; c++) {
          for (let ch = 0; ch < 2; ch++)
            expect(v[(r * 5 + c) * 2 + ch], `${name} (${r}, ${c})`).toBe(missing(r, c) ? 0 : 1);
        }
      }
    }
    const rnd = namedMask('random', { height: 10, width: 12, channels: 3, ratio: 0.25, seed: 8 });
    expect(rnd.shape).toEqual([10, 12, 3]);
    const rv = await read(rnd);
    expect(rv.filter((v) => v === 0).length).toBe(3 * 30); // exactly round(0.25 · 120) pixels, all channels
    sameOnEveryBackend('random mask', rv);
    const again = await read(namedMask('random', { height: 10, width: 12, channels: 3, ratio: 0.25, seed: 8 }));
    expect(again).toEqual(rv);
    const other = namedPixelMask('random', { height: 10, width: 12, ratio: 0.25, seed: 9 });
    expect(Array.from(other)).not.toEqual(rv.filter((_, i) => i % 3 === 0));
    expect(namedPixelMask('random', { height: 10, width: 10 }).filter((v) => v === 0).length).toBe(70);
    expectThrowsSbm(
      () => namedMask('center', { height: 4, width: 4 }),
      'UNKNOWN_NAME',
      /^name: expected one of "center-box"/,
    );
    expectThrowsSbm(() => namedMask('random', { height: 4, width: 4, ratio: 1.5 }), 'INVALID_ARGUMENT', /^ratio: /);
    expect(countTensors()).toBe(before);
  });

  it("createOperator builds the built-ins by name with these options (the lead's registry)", async () => {
    const before = countTensors();
    const ops = [
      await createOperator('mask', { mask: [[1, 0, 1]] }),
      await createOperator('grayscale', { height: 3, width: 2 }),
      await createOperator('downsample', { inShape: [4, 4, 3], factor: 2 }),
      await createOperator('gaussian', { inShape: [3, 3, 1], ratio: 0.5, seed: 4 }),
    ];
    expect(ops.map((o) => [o.name, o.inShape, o.outShape])).toEqual([
      ['mask', [1, 3], [1, 3]],
      ['grayscale', [3, 2, 3], [3, 2, 1]],
      ['downsample', [4, 4, 3], [2, 2, 3]],
      ['gaussian', [3, 3, 1], [5]],
    ]);
    for (const op of ops) op.dispose!();
    expect(countTensors()).toBe(before);
  });
});
