import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { SeedStream, countTensors, randomNormal } from '@sbm/core';
import { describeWithBackends, expectRejectsSbm, expectThrowsSbm } from '@sbm/test-harness';
import { adjointTest, baselinesFor, createOperator, runBaseline, type LinearOperator } from '@sbm/inverse-problems';
import { filteredBackProjection, radonGeometry, radonOperator } from '../src/operators/radon';
import { materialize } from '../src/operators/dense';
import { pseudoInverse } from '../src/linalg';

// ---------- float64 reference geometry (independent of the operator's footprint code) ----------

/**
 * A centred disk of radius r on a size×size grid (pixel pitch 1, centre at ((size − 1)/2, (size − 1)/2)), each pixel
 * the fraction of its area inside the disk, estimated on a sub×sub midpoint grid.
 */
function diskImage(size: number, r: number, sub = 16): Float32Array {
  const c = (size - 1) / 2;
  const out = new Float32Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let inside = 0;
      for (let a = 0; a < sub; a++) {
        for (let b = 0; b < sub; b++) {
          const x = j - c - 0.5 + (b + 0.5) / sub;
          const y = c - i - 0.5 + (a + 0.5) / sub;
          if (x * x + y * y <= r * r) inside++;
        }
      }
      out[i * size + j] = inside / (sub * sub);
    }
  }
  return out;
}

/** The exact average of the chord 2√(r² − s²) over the bin [lo, hi] (antiderivative s√(r² − s²) + r² asin(s/r)). */
function binChord(r: number, lo: number, hi: number): number {
  const F = (s: number) => {
    const t = Math.max(-r, Math.min(r, s));
    return t * Math.sqrt(r * r - t * t) + r * r * Math.asin(t / r);
  };
  return (F(hi) - F(lo)) / (hi - lo);
}

function psnr(a: ArrayLike<number>, b: ArrayLike<number>, peak = 1): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return 10 * Math.log10((peak * peak) / (se / a.length));
}

async function values(t: tf.Tensor): Promise<Float32Array> {
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

describeWithBackends('radonOperator', () => {
  it('passes the dot-product adjoint test at an odd size (11×11, 9 views; 7 views, 13 detectors, custom angles)', async () => {
    const before = countTensors();
    const ops = [
      await radonOperator({ size: 11, views: 9, pinv: false }),
      await radonOperator({ size: 11, angles: [0.1, 0.7, 1.9, 2.5, 3.0, 0.35, 1.2], detectors: 13, pinv: false }),
    ];
    for (const op of ops) {
      expect(op.name).toBe('radon');
      const r = await adjointTest(op, { trials: 3, tol: 1e-5, seed: 3 });
      console.log(`radon ${op.outShape.join('×')} adjoint relError ${r.relError.toExponential(2)}`);
      expect(r.passed).toBe(true);
      op.dispose?.();
      op.dispose?.(); // idempotent
    }
    expect(ops[0].outShape).toEqual([9, 16]); // ⌈11·√2⌉ = 16 detectors by default
    // forward's custom gradient is the adjoint: ∇ₓ ⟨A x, y⟩ = Aᵀ y (DPS differentiates through A).
    const op = await radonOperator({ size: 11, views: 9, pinv: false });
    const stream = new SeedStream(4);
    const x = randomNormal([2, 11, 11, 1], stream);
    const y = randomNormal([2, 9, 16], stream);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(op.forward(v), y)))(x);
    const aty = op.adjoint(y);
    const gErr = tf.tidy(() => tf.div(tf.norm(tf.sub(g, aty)), tf.norm(aty)));
    expect((await values(gErr))[0]).toBeLessThan(1e-6);
    tf.dispose([x, y, g, aty]);
    op.dispose?.();
    expect(ops[1].outShape).toEqual([7, 13]);
    expect(countTensors()).toBe(before);
  });

  it('lays the sinogram out as [views, detectors]: θ = 0 projects on x, θ = π/2 on y (y up)', async () => {
    const before = countTensors();
    // 15 detectors (odd) put bin centres at integer s, so a pixel's footprint falls in one bin at θ = 0 and π/2.
    const op = await radonOperator({ size: 11, angles: [0, Math.PI / 2], detectors: 15, pinv: false });
    const img = new Float32Array(121);
    img[1 * 11 + 4] = 1; // row 1, column 4: x = 4 − 5 = −1, y = 5 − 1 = 4
    const x = tf.tensor4d(img, [1, 11, 11, 1]);
    const sino = await values(op.forward(x));
    x.dispose();
    const expected = new Float32Array(30);
    expected[0 * 15 + (7 - 1)] = 1; // θ = 0: s = x = −1 → bin 6
    expected[1 * 15 + (7 + 4)] = 1; // θ = π/2: s = y = 4 → bin 11
    for (let k = 0; k < 30; k++) expect(sino[k]).toBeCloseTo(expected[k], 6);
    op.dispose?.();
    expect(countTensors()).toBe(before);
  });

  it("matches a centred disk's bin-averaged chord lengths 2√(r² − s²) and conserves mass in every view", async () => {
    const before = countTensors();
    const size = 33;
    const r = 12;
    const views = 12;
    const op = await radonOperator({ size, views, pinv: false });
    const d = op.outShape[1];
    const img = diskImage(size, r);
    const x = tf.tensor4d(img, [1, size, size, 1]);
    const sino = await values(op.forward(x));
    x.dispose();
    const mass = img.reduce((s, v) => s + v, 0);
    // Discretisation tolerance, stated before measuring: the pixel image keeps each boundary pixel's covered area but
    // spreads it over the whole pixel, so a bin's strip integral can only be off through the pixels that straddle both
    // the circle and a strip edge. Away from tangency a unit strip edge crosses the circle at 2 points, each inside
    // ≤ 2 boundary pixels whose displaced area is ≤ 1/4 of a pixel on average → |error| ≤ 2 edges · 2 · 2 · 1/4 = 2 px²
    // per unit-wide bin as a worst case; on average over the bins the misplacement cancels (each edge moves mass
    // between neighbouring bins), so the RMS error is bounded at 1/4 of that, 0.5.
    let maxErr = 0;
    let se = 0;
    let count = 0;
    for (let v = 0; v < views; v++) {
      let sum = 0;
      for (let k = 0; k < d; k++) {
        const s = k - (d - 1) / 2;
        const got = sino[v * d + k];
        sum += got;
        const err = Math.abs(got - binChord(r, s - 0.5, s + 0.5));
        maxErr = Math.max(maxErr, err);
        se += err * err;
        count++;
      }
      // Each pixel's footprint integrates to its area and lies on the detector: Σ_k p_v[k] = Σ pixels, exactly up to
      // float32 summation (≈ 1e-7 · size² relative).
      expect(Math.abs(sum - mass) / mass).toBeLessThan(1e-5);
    }
    const rms = Math.sqrt(se / count);
    console.log(
      `disk r=${r} on ${size}²: chord max |err| ${maxErr.toFixed(3)}, rms ${rms.toFixed(3)} (chord ≤ ${2 * r})`,
    );
    expect(maxErr).toBeLessThan(2);
    expect(rms).toBeLessThan(0.5);
    op.dispose?.();
    expect(countTensors()).toBe(before);
  });

  it('has an exact pseudo-inverse: A A⁺ A = A (dense 9 views and sparse 5 views on 11×11)', async () => {
    const before = countTensors();
    for (const views of [9, 5]) {
      const op = await radonOperator({ size: 11, views });
      expect(typeof op.pinv).toBe('function');
      // κ of the kept part (σ ≥ 1e-6 σ_max, withPinv's default cut) from an independent float64 SVD of the matrix.
      const { rows, cols, data } = await materialize(op);
      const { singularValues: s, rank } = pseudoInverse(data, rows, cols, 1e-6);
      const kappa = s[0] / s[rank - 1];
      const x = randomNormal([3, 11, 11, 1], new SeedStream(11));
      const err = tf.tidy(() => {
        const ax = op.forward(x);
        const aapax = op.forward(op.pinv!(ax));
        return tf.div(tf.norm(tf.sub(aapax, ax)), tf.norm(ax));
      });
      // A⁺ is exact in float64 but applied in float32: a rounding of relative size ε₃₂ in A⁺ y is amplified by at
      // most κ when A maps it back, so the bound is ε₃₂ · κ (random errors land far below it).
      const tol = 2 ** -23 * kappa;
      const e = (await values(err))[0];
      console.log(
        `radon ${views} views: rank ${rank}/${cols}, κ ${kappa.toExponential(2)}; ‖A A⁺ A x − A x‖ / ‖A x‖ = ${e.toExponential(2)} (bound ${tol.toExponential(2)})`,
      );
      expect(e).toBeLessThan(tol);
      // A⁺ A is the projection onto the row space: applying it twice changes nothing.
      const idem = tf.tidy(() => {
        const p1 = op.pinv!(op.forward(x));
        const p2 = op.pinv!(op.forward(p1));
        return tf.div(tf.norm(tf.sub(p2, p1)), tf.norm(p1));
      });
      expect((await values(idem))[0]).toBeLessThan(tol);
      x.dispose();
      expect(radonGeometry(op)?.views).toBe(views);
      op.dispose?.();
    }
    expect(countTensors()).toBe(before);
  });

  it('filtered back-projection reconstructs a disk phantom with 90 views and is clearly worse with 8', async () => {
    const before = countTensors();
    const size = 32;
    const img = diskImage(size, 9);
    const x = tf.tensor4d(img, [1, size, size, 1]);
    const res: Record<string, number> = {};
    for (const views of [90, 8]) {
      const t0 = performance.now();
      const op = await radonOperator({ size, views, pinv: false });
      const y = op.forward(x);
      const t1 = performance.now();
      for (const filter of views === 90 ? (['ram-lak', 'shepp-logan'] as const) : (['ram-lak'] as const)) {
        const rec = await values(filteredBackProjection(op, y, { filter }));
        res[`${views} ${filter}`] = psnr(rec, img);
        if (views === 90 && filter === 'ram-lak') {
          // The registered baseline is the same computation.
          expect(baselinesFor(op)).toContain('fbp');
          const viaBaseline = await values(await runBaseline('fbp', op, y));
          let maxDiff = 0;
          for (let i = 0; i < rec.length; i++) maxDiff = Math.max(maxDiff, Math.abs(viaBaseline[i] - rec[i]));
          expect(maxDiff).toBeLessThan(1e-6);
        }
      }
      console.log(
        `radon ${size}², ${views} views: build + forward ${(t1 - t0).toFixed(0)} ms, FBP ${(performance.now() - t1).toFixed(0)} ms`,
      );
      y.dispose();
      op.dispose?.();
    }
    // The quadrature weights follow the angles, not their order: the 8 uniform angles shuffled (and shifted by π)
    // give the same image, row for row of the permuted sinogram.
    const uniform = Array.from({ length: 8 }, (_, v) => (v * Math.PI) / 8);
    const order = [3, 0, 7, 5, 1, 6, 2, 4];
    const opU = await radonOperator({ size, views: 8, pinv: false });
    const opS = await radonOperator({ size, angles: order.map((v) => uniform[v] + (v % 2) * Math.PI), pinv: false });
    const recU = await values(tf.tidy(() => filteredBackProjection(opU, opU.forward(x))));
    const recS = await values(tf.tidy(() => filteredBackProjection(opS, opS.forward(x))));
    let maxDiff = 0;
    for (let i = 0; i < recU.length; i++) maxDiff = Math.max(maxDiff, Math.abs(recU[i] - recS[i]));
    expect(maxDiff).toBeLessThan(1e-4);
    opU.dispose?.();
    opS.dispose?.();
    x.dispose();
    console.log(
      `FBP PSNR (dB): ${Object.entries(res)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(', ')}`,
    );
    // A unit-contrast disk with 90 views: the residual is the disk edge's blur (≈ 1 px band, ~10% of pixels at
    // |error| ≲ 0.3 → PSNR ≳ 20 dB); 8 views add streaks over the whole image (≥ 3 dB worse).
    expect(res['90 ram-lak']).toBeGreaterThan(20);
    expect(res['90 shepp-logan']).toBeGreaterThan(20);
    expect(res['8 ram-lak']).toBeLessThan(res['90 ram-lak'] - 3);
    expect(countTensors()).toBe(before);
  });

  it('is built by name through createOperator', async () => {
    const before = countTensors();
    const op: LinearOperator = await createOperator('radon', { size: 7, views: 3, pinv: false });
    expect(op.inShape).toEqual([7, 7, 1]);
    expect(op.outShape).toEqual([3, 10]);
    op.dispose?.();
    expect(countTensors()).toBe(before);
  });

  it('refuses bad options and bad tensors with SbmError naming the argument, without leaking', async () => {
    const before = countTensors();
    await expectRejectsSbm(() => radonOperator({ size: 8, views: 0 }), 'INVALID_ARGUMENT', /^views: .*>= 1.*got 0/);
    await expectRejectsSbm(() => radonOperator({ size: 8, views: 2.5 }), 'INVALID_ARGUMENT', /^views: /);
    await expectRejectsSbm(() => radonOperator({ size: 0, views: 4 }), 'INVALID_ARGUMENT', /^size: /);
    await expectRejectsSbm(
      () => radonOperator({ height: 8, width: 10, views: 4 } as never),
      'INVALID_ARGUMENT',
      /^size: .*square.*8×10/,
    );
    await expectRejectsSbm(
      () => radonOperator({ inShape: [8, 10, 1], views: 4 } as never),
      'INVALID_ARGUMENT',
      /^size: .*square/,
    );
    await expectRejectsSbm(
      () => radonOperator({ size: 8, views: 4, detectors: 0 }),
      'INVALID_ARGUMENT',
      /^detectors: /,
    );
    await expectRejectsSbm(() => radonOperator({ size: 8, angles: [0, NaN] }), 'INVALID_ARGUMENT', /^angles: /);
    await expectRejectsSbm(
      () => radonOperator({ size: 8, views: 3, angles: [0, 1] }),
      'INVALID_ARGUMENT',
      /^views: .*angles\.length \(2\).*got 3/,
    );
    await expectRejectsSbm(() => radonOperator({ size: 400, views: 400 }), 'INVALID_ARGUMENT', /^size: .*entries/);
    expect(countTensors()).toBe(before);

    const op = await radonOperator({ size: 8, views: 4, pinv: false });
    const wrong = tf.zeros([1, 8, 10, 1]);
    expectThrowsSbm(
      () => op.forward(wrong),
      'INVALID_SHAPE',
      /radon\.forward\(x\).*\[batch, 8, 8, 1\].*\[1, 8, 10, 1\]/,
    );
    expectThrowsSbm(() => op.adjoint(wrong), 'INVALID_SHAPE', /radon\.adjoint\(y\)/);
    expectThrowsSbm(() => filteredBackProjection(op, wrong), 'INVALID_SHAPE', /^sinogram: /);
    const sino = tf.zeros([1, 4, 12]);
    expectThrowsSbm(
      () => filteredBackProjection(op, sino, { filter: 'hann' as never }),
      'UNKNOWN_NAME',
      /^filter: .*"hann"/,
    );
    const notRadon: LinearOperator = {
      name: 'mask',
      inShape: [1],
      outShape: [1],
      forward: (v) => v,
      adjoint: (v) => v,
    };
    expectThrowsSbm(() => filteredBackProjection(notRadon, sino), 'INVALID_ARGUMENT', /^operator: .*'mask'/);
    wrong.dispose();
    sino.dispose();
    op.dispose?.();
    expect(countTensors()).toBe(before);
  });
});
