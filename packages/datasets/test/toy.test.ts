import { describe, expect, it } from 'vitest';
import { SeedStream, listRegistered, withLeakCheck } from '@sbm/core';
import { grid25Means, registerToy, ring8Means, toy, toyArray, toyNames, SWISS_ROLL_SCALE } from '@sbm/datasets';
import { expectSbm } from './helpers';

const N = 20000;

/** Points as [x, y] pairs. */
function pairs(a: Float32Array): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < a.length; i += 2) out.push([a[i], a[i + 1]]);
  return out;
}

function mean(v: number[]): number {
  return v.reduce((s, x) => s + x, 0) / v.length;
}

/** Counts of each category must be within 5 binomial standard deviations of n·p. */
function expectBinomial(count: number, n: number, p: number): void {
  expect(Math.abs(count - n * p)).toBeLessThan(5 * Math.sqrt(n * p * (1 - p)));
}

function nearest(p: [number, number], means: number[][]): number {
  let best = 0;
  let bestD = Infinity;
  means.forEach((m, k) => {
    const d = (p[0] - m[0]) ** 2 + (p[1] - m[1]) ** 2;
    if (d < bestD) [best, bestD] = [k, d];
  });
  return best;
}

describe('toy registry', () => {
  it('lists the built-ins and rejects unknown names listing them', async () => {
    expect(toyNames()).toEqual(
      expect.arrayContaining(['ring8', 'grid25', 'gmm', 'swiss-roll', 'moons', 'checkerboard', 'rings']),
    );
    await expectSbm(() => toy('spiral', 10, 0), 'UNKNOWN_NAME', /expected one of "ring8", "grid25".*got "spiral"/);
  });

  it('registers a new toy once', async () => {
    registerToy('diagonal-test', (n, rng, _o, out) => {
      for (let i = 0; i < n; i++) out[2 * i] = out[2 * i + 1] = rng.uniform();
    });
    const a = toyArray('diagonal-test', 5, 1);
    for (const [x, y] of pairs(a)) expect(x).toBe(y);
    await expectSbm(() => registerToy('diagonal-test', () => undefined), 'DUPLICATE_NAME', /already registered/);
  });

  it('replaces a toy only with { override }, records its source and suggests near names', async () => {
    const flat = (value: number) => (n: number, _rng: unknown, _o: unknown, out: Float32Array) => out.fill(value);
    registerToy('override-test', flat(1), { source: 'my-plugin@1.0.0' });
    await expectSbm(() => registerToy('override-test', flat(2)), 'DUPLICATE_NAME', /my-plugin@1\.0\.0.*override/);
    expect(toyArray('override-test', 2, 0)[0]).toBe(1);
    registerToy('override-test', flat(2), { override: true });
    expect(toyArray('override-test', 2, 0)[0]).toBe(2);
    const entry = listRegistered().find((e) => e.kind === 'toy' && e.name === 'override-test');
    expect(entry?.source).toBe('my-plugin@1.0.0');
    expect(listRegistered().find((e) => e.kind === 'toy' && e.name === 'moons')?.source).toMatch(
      /^@sbm\/datasets@\d+\.\d+\.\d+/,
    );
    await expectSbm(() => toy('mons', 10, 0), 'UNKNOWN_NAME', /toy: name: .*got "mons" \(did you mean "moons"\?\)/);
  });

  it('validates n, seed and options', async () => {
    await expectSbm(() => toy('ring8', 0, 1), 'INVALID_ARGUMENT', /toy: n: expected an integer >= 1, got 0/);
    await expectSbm(() => toy('ring8', 4, 1.5), 'INVALID_ARGUMENT', /toy: seed: expected a safe integer/);
    await expectSbm(
      () => toy('ring8', 4, 1, { std: -1 }),
      'INVALID_ARGUMENT',
      /toy option std: expected a finite number > 0, got -1/,
    );
    await expectSbm(() => toy('gmm', 4, 1), 'INVALID_ARGUMENT', /toy option means: expected a non-empty array/);
    await expectSbm(
      () => toy('gmm', 4, 1, { means: [[0, 0]], weights: [1, 2] }),
      'INVALID_ARGUMENT',
      /weights: expected one value per component \(1\), got 2/,
    );
  });
});

describe('toy determinism and tensors', () => {
  it('same seed ⇒ same bits; another seed ⇒ other points; SeedStream accepted', async () => {
    for (const name of ['ring8', 'grid25', 'swiss-roll', 'moons', 'checkerboard', 'rings']) {
      const a = toyArray(name, 100, 42);
      expect(Array.from(toyArray(name, 100, 42))).toEqual(Array.from(a));
      expect(Array.from(toyArray(name, 100, 43))).not.toEqual(Array.from(a));
      expect(Array.from(toyArray(name, 100, new SeedStream(42)))).toEqual(Array.from(a));
    }
  });

  it('toy() returns a [n, 2] float32 tensor holding toyArray’s values and leaks nothing', async () => {
    await withLeakCheck(() => {
      const t = toy('moons', 37, 5);
      expect(t.shape).toEqual([37, 2]);
      expect(t.dtype).toBe('float32');
      expect(Array.from(t.dataSync())).toEqual(Array.from(toyArray('moons', 37, 5)));
      t.dispose();
    }, 'toy');
  });
});

describe('toy geometry and moments (n = 20000, fixed seeds; tolerances 5 standard errors)', () => {
  it('ring8: every component equally likely, E|x|² = r² + 2s²', () => {
    const r = 2;
    const s = 0.1;
    const pts = pairs(toyArray('ring8', N, 1, { radius: r, std: s }));
    const means = ring8Means(r);
    const counts = new Array(8).fill(0);
    for (const p of pts) counts[nearest(p, means)]++;
    for (const c of counts) expectBinomial(c, N, 1 / 8);
    // |x|² = r² + 2s·m·z + s²|z|², so Var|x|² = 4 s² r² + 4 s⁴ (|z|² is χ² with 2 degrees of freedom).
    const sq = mean(pts.map(([x, y]) => x * x + y * y));
    expect(Math.abs(sq - (r * r + 2 * s * s))).toBeLessThan(5 * Math.sqrt((4 * s * s * r * r + 4 * s ** 4) / N));
    // Per-coordinate variance r²/2 + s² bounds the standard error of the mean.
    const se = Math.sqrt((r * r) / 2 + s * s) / Math.sqrt(N);
    expect(Math.abs(mean(pts.map((p) => p[0])))).toBeLessThan(5 * se);
    expect(Math.abs(mean(pts.map((p) => p[1])))).toBeLessThan(5 * se);
  });

  it('grid25: 25 equally likely components; E x² = 2·spacing² + s²', () => {
    const pts = pairs(toyArray('grid25', N, 2, { spacing: 1, std: 0.1 }));
    const counts = new Array(25).fill(0);
    for (const p of pts) counts[nearest(p, grid25Means(1))]++;
    for (const c of counts) expectBinomial(c, N, 1 / 25);
    // x = m + s z with m uniform on {−2..2}: E x² = 2 + s², Var x² = Var m² + 4 s² E m² + 2 s⁴ (Var m² = 14/5 − 4).
    const ex2 = mean(pts.map((p) => p[0] ** 2));
    const varX2 = 34 / 5 - 4 + 4 * 0.01 * 2 + 2 * 1e-4;
    expect(Math.abs(ex2 - 2.01)).toBeLessThan(5 * Math.sqrt(varX2 / N));
  });

  it('gmm: component frequencies follow the weights', () => {
    const means = [
      [-5, 0],
      [5, 0],
    ];
    const pts = pairs(toyArray('gmm', N, 3, { means, std: [0.5, 1], weights: [1, 3] }));
    const right = pts.filter((p) => p[0] > 0).length;
    expectBinomial(right, N, 0.75);
  });

  it('swiss-roll (noise 0): (7x, 7z) = (t cos t, t sin t) with t = 7·|p| ∈ [1.5π, 4.5π]; means 2/7 and 2/(21π)', () => {
    const pts = pairs(toyArray('swiss-roll', N, 4, { noise: 0 }));
    // Per-point checks are counted, not asserted one by one (20000 expect calls are slow).
    const off = pts.filter(([x, z]) => {
      const t = SWISS_ROLL_SCALE * Math.hypot(x, z);
      return (
        t < 1.5 * Math.PI - 1e-4 ||
        t > 4.5 * Math.PI + 1e-4 ||
        Math.abs(SWISS_ROLL_SCALE * x - t * Math.cos(t)) > 1e-4 * t ||
        Math.abs(SWISS_ROLL_SCALE * z - t * Math.sin(t)) > 1e-4 * t
      );
    });
    expect(off).toEqual([]);
    // E[t cos t] = [cos t + t sin t] / 3π = 2 and E[t sin t] = [sin t − t cos t] / 3π = 2/(3π) over t ~ U[1.5π, 4.5π];
    // the scaled coordinates have standard deviation < 1, so 5/√N bounds 5 standard errors.
    expect(Math.abs(mean(pts.map((p) => p[0])) - 2 / 7)).toBeLessThan(5 / Math.sqrt(N));
    expect(Math.abs(mean(pts.map((p) => p[1])) - 2 / (21 * Math.PI))).toBeLessThan(5 / Math.sqrt(N));
    const sd = Math.sqrt(mean(pts.map((p) => p[0] ** 2)) - mean(pts.map((p) => p[0])) ** 2);
    expect(sd).toBeGreaterThan(0.85);
    expect(sd).toBeLessThan(1.05);
  });

  it('moons (noise 0): unit half circles around (−0.5, −0.25) (upper) and (0.5, 0.25) (lower), half the points each, mean 0', () => {
    const pts = pairs(toyArray('moons', N, 5, { noise: 0 }));
    let upper = 0;
    let off = 0;
    for (const [x, y] of pts) {
      const dUpper = Math.hypot(x + 0.5, y + 0.25);
      const dLower = Math.hypot(x - 0.5, y - 0.25);
      if (Math.abs(dUpper - 1) < 1e-5 && y >= -0.25 - 1e-6) upper++;
      else if (!(Math.abs(dLower - 1) < 1e-5 && y <= 0.25 + 1e-6)) off++;
    }
    expect(off).toBe(0);
    expectBinomial(upper, N, 0.5);
    // Coordinates are bounded by 1.5 in magnitude, so 1.5/√N bounds a standard error.
    expect(Math.abs(mean(pts.map((p) => p[0])))).toBeLessThan((5 * 1.5) / Math.sqrt(N));
    expect(Math.abs(mean(pts.map((p) => p[1])))).toBeLessThan((5 * 1.5) / Math.sqrt(N));
  });

  it('checkerboard: every point on a dark cell, the 8 dark cells equally likely', () => {
    const pts = pairs(toyArray('checkerboard', N, 6));
    const counts = new Map<string, number>();
    let off = 0;
    for (const [x, y] of pts) {
      const i = Math.floor(x + 2);
      const j = Math.floor(y + 2);
      if (Math.abs(x) > 2 || Math.abs(y) > 2 || (i + j) % 2 !== 0) off++;
      counts.set(`${i},${j}`, (counts.get(`${i},${j}`) ?? 0) + 1);
    }
    expect(off).toBe(0);
    expect(counts.size).toBe(8);
    for (const c of counts.values()) expectBinomial(c, N, 1 / 8);
  });

  it('rings (noise 0): every radius is one of the radii, each ring equally likely', () => {
    const radii = [0.5, 1, 1.5, 2];
    const pts = pairs(toyArray('rings', N, 7, { noise: 0 }));
    const counts = new Array(5).fill(0);
    for (const [x, y] of pts) {
      const r = Math.hypot(x, y);
      const k = radii.findIndex((R) => Math.abs(r - R) < 1e-5);
      counts[k < 0 ? 4 : k]++;
    }
    expect(counts.pop()).toBe(0); // points on no ring
    for (const c of counts) expectBinomial(c, N, 1 / 4);
  });

  it('rings with noise: mean squared radial deviation ≈ noise² (radial part of isotropic noise)', () => {
    const noise = 0.05;
    const pts = pairs(toyArray('rings', N, 8, { radii: [3], noise }));
    // For noise ≪ radius the radial deviation is ≈ N(0, noise²): E d² = noise², Var d² = 2 noise⁴.
    const d2 = mean(pts.map(([x, y]) => (Math.hypot(x, y) - 3) ** 2));
    expect(Math.abs(d2 - noise * noise)).toBeLessThan(5 * Math.sqrt((2 * noise ** 4) / N) + 1e-5);
  });
});
