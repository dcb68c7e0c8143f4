import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  SeedStream,
  createRegistry,
  isSeedStream,
  checkNumber,
  checkSeed,
  describeValue,
  type RegisterOptions,
} from '@sbm/core';
import { name as pkgName, version as pkgVersion } from '../package.json';
import { Rng } from './rng';

/** Generator options are plain JSON so a config can carry them (`{ "name": "ring8", "std": 0.05 }`). */
export type ToyOptions = Record<string, unknown>;

/** Writes n points into out[2i], out[2i + 1], drawing randomness only from rng. */
export type ToyGenerator = (n: number, rng: Rng, opts: ToyOptions, out: Float32Array) => void;

// core's registry: shared by the ESM and CJS builds, listed by `sbm plugins`, did-you-mean on unknown names.
const registry = createRegistry<ToyGenerator>('toy', { registerName: 'registerToy', argument: 'toy: name' });

function num(opts: ToyOptions, key: string, fallback: number, rule: Parameters<typeof checkNumber>[2]): number {
  return opts[key] === undefined ? fallback : checkNumber(opts[key], `toy option ${key}`, rule);
}

function numList(opts: ToyOptions, key: string, fallback: number[], rule: Parameters<typeof checkNumber>[2]): number[] {
  const v = opts[key];
  if (v === undefined) return fallback;
  if (!Array.isArray(v) || v.length === 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `toy option ${key}: expected a non-empty array of numbers, got ${describeValue(v)}`,
    );
  }
  return v.map((x, i) => checkNumber(x, `toy option ${key}[${i}]`, rule));
}

/** Isotropic Gaussian mixture, drawn as: pick a component (equal or given weights), add std·N(0, I). */
function mixture(
  means: number[][],
  std: number[],
  weights: number[] | undefined,
  n: number,
  rng: Rng,
  out: Float32Array,
): void {
  const K = means.length;
  const cum = weights ? cumulative(weights) : undefined;
  for (let i = 0; i < n; i++) {
    const k = cum ? pick(cum, rng.uniform()) : rng.int(K);
    out[2 * i] = means[k][0] + std[k] * rng.normal();
    out[2 * i + 1] = means[k][1] + std[k] * rng.normal();
  }
}

function cumulative(w: number[]): number[] {
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  return w.map((x) => (acc += x / total));
}

function pick(cum: number[], u: number): number {
  for (let k = 0; k < cum.length - 1; k++) if (u < cum[k]) return k;
  return cum.length - 1;
}

/** Means of the 8-Gaussian ring: angle 2πk/8, k = 0..7, at `radius`. */
export function ring8Means(radius = 2): number[][] {
  return Array.from({ length: 8 }, (_, k) => [
    radius * Math.cos((2 * Math.PI * k) / 8),
    radius * Math.sin((2 * Math.PI * k) / 8),
  ]);
}

/** Means of the 25-Gaussian grid: {−2, −1, 0, 1, 2}·spacing in each coordinate. */
export function grid25Means(spacing = 1): number[][] {
  const m: number[][] = [];
  for (let i = -2; i <= 2; i++) for (let j = -2; j <= 2; j++) m.push([i * spacing, j * spacing]);
  return m;
}

const builtins: Record<string, ToyGenerator> = {
  /** 8 equal Gaussians on a circle. Options: radius (2), std (0.1). */
  ring8(n, rng, o, out) {
    const std = num(o, 'std', 0.1, { gt: 0 });
    mixture(ring8Means(num(o, 'radius', 2, { gt: 0 })), new Array(8).fill(std), undefined, n, rng, out);
  },
  /** 25 equal Gaussians on a 5×5 grid. Options: spacing (1), std (0.1). */
  grid25(n, rng, o, out) {
    const std = num(o, 'std', 0.1, { gt: 0 });
    mixture(grid25Means(num(o, 'spacing', 1, { gt: 0 })), new Array(25).fill(std), undefined, n, rng, out);
  },
  /** A given mixture. Options: means ([[x, y], …], required), std (number or one per component, 1), weights (equal). */
  gmm(n, rng, o, out) {
    const means = o.means;
    if (!Array.isArray(means) || means.length === 0) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `toy option means: expected a non-empty array of [x, y] pairs, got ${describeValue(means)}`,
      );
    }
    const m = means.map((p, k) => {
      if (!Array.isArray(p) || p.length !== 2) {
        throw new SbmError('INVALID_ARGUMENT', `toy option means[${k}]: expected [x, y], got ${describeValue(p)}`);
      }
      return [checkNumber(p[0], `toy option means[${k}][0]`), checkNumber(p[1], `toy option means[${k}][1]`)];
    });
    const stdOpt =
      o.std === undefined || typeof o.std === 'number'
        ? new Array(m.length).fill(num(o, 'std', 1, { gt: 0 }))
        : numList(o, 'std', [], { gt: 0 });
    if (stdOpt.length !== m.length) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `toy option std: expected one value per component (${m.length}), got ${stdOpt.length}`,
      );
    }
    const weights = o.weights === undefined ? undefined : numList(o, 'weights', [], { gt: 0 });
    if (weights && weights.length !== m.length) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `toy option weights: expected one value per component (${m.length}), got ${weights.length}`,
      );
    }
    mixture(m, stdOpt, weights, n, rng, out);
  },
  /**
   * sklearn's make_swiss_roll projected to (x, z): t ~ U[1.5π, 4.5π], (x, z) = (t cos t, t sin t) + noise·N(0, I),
   * then divided by 7, after which the noise-free roll has coordinate standard deviations ≈ 0.95 (x) and ≈ 0.99 (z)
   * and means 2/7 and 2/(21π). Options: noise (0.5, in sklearn's units, before the division).
   */
  'swiss-roll'(n, rng, o, out) {
    const noise = num(o, 'noise', 0.5, { min: 0 });
    for (let i = 0; i < n; i++) {
      const t = 1.5 * Math.PI * (1 + 2 * rng.uniform());
      out[2 * i] = (t * Math.cos(t) + noise * rng.normal()) / SWISS_ROLL_SCALE;
      out[2 * i + 1] = (t * Math.sin(t) + noise * rng.normal()) / SWISS_ROLL_SCALE;
    }
  },
  /**
   * sklearn's make_moons with θ ~ U[0, π] instead of a linspace (so any n gives i.i.d. points), each point in either
   * moon with probability ½, shifted by (−0.5, −0.25) so the mean is 0: upper moon centred at (−0.5, −0.25), lower
   * moon at (0.5, 0.25), both of radius 1. Options: noise (0.05, std of added Gaussian noise).
   */
  moons(n, rng, o, out) {
    const noise = num(o, 'noise', 0.05, { min: 0 });
    for (let i = 0; i < n; i++) {
      const theta = Math.PI * rng.uniform();
      const upper = rng.uniform() < 0.5;
      const x = upper ? Math.cos(theta) : 1 - Math.cos(theta);
      const y = upper ? Math.sin(theta) : 0.5 - Math.sin(theta);
      out[2 * i] = x - 0.5 + noise * rng.normal();
      out[2 * i + 1] = y - 0.25 + noise * rng.normal();
    }
  },
  /**
   * Uniform on the dark squares of a cells×cells board covering [−size/2, size/2]²; a square (i, j), counted from the
   * lower left, is dark when i + j is even. Options: cells (4), size (4).
   */
  checkerboard(n, rng, o, out) {
    const cells = num(o, 'cells', 4, { integer: true, min: 2 });
    const size = num(o, 'size', 4, { gt: 0 });
    const dark: [number, number][] = [];
    for (let i = 0; i < cells; i++) for (let j = 0; j < cells; j++) if ((i + j) % 2 === 0) dark.push([i, j]);
    const w = size / cells;
    for (let k = 0; k < n; k++) {
      const [i, j] = dark[rng.int(dark.length)];
      out[2 * k] = -size / 2 + (i + rng.uniform()) * w;
      out[2 * k + 1] = -size / 2 + (j + rng.uniform()) * w;
    }
  },
  /**
   * Concentric circles: a ring chosen with equal probability, a uniform angle, plus noise·N(0, I).
   * Options: radii ([0.5, 1, 1.5, 2]), noise (0.05).
   */
  rings(n, rng, o, out) {
    const radii = numList(o, 'radii', [0.5, 1, 1.5, 2], { gt: 0 });
    const noise = num(o, 'noise', 0.05, { min: 0 });
    for (let i = 0; i < n; i++) {
      const r = radii[rng.int(radii.length)];
      const a = 2 * Math.PI * rng.uniform();
      out[2 * i] = r * Math.cos(a) + noise * rng.normal();
      out[2 * i + 1] = r * Math.sin(a) + noise * rng.normal();
    }
  },
};

/** The swiss roll is divided by this (see 'swiss-roll'). */
export const SWISS_ROLL_SCALE = 7;

for (const [name, gen] of Object.entries(builtins)) {
  registry.register(name, gen, { ifAbsent: true, source: `${pkgName}@${pkgVersion}` });
}

/** Names of the registered 2-D toy distributions. */
export function toyNames(): string[] {
  return registry.list();
}

/**
 * Adds a toy distribution (then `toy(name, ...)`, `sbm train --data toy:NAME`); DUPLICATE_NAME if the name is taken,
 * unless `{ override: true }`. `source` ("pkg@1.2.3") is what `sbm plugins` shows.
 */
export function registerToy(name: string, generator: ToyGenerator, opts: RegisterOptions = {}): void {
  registry.register(name, generator, opts);
}

/** n points of a named toy distribution as plain numbers (row-major [n, 2]); same seed ⇒ same bits everywhere. */
export function toyArray(name: string, n: number, seed: number | SeedStream, opts: ToyOptions = {}): Float32Array {
  const gen = registry.get(name, 'toy: name');
  checkNumber(n, 'toy: n', { integer: true, min: 1 });
  if (!isSeedStream(seed)) checkSeed(seed, 'toy: seed');
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `toy: opts: expected an object, got ${describeValue(opts)}`);
  }
  const out = new Float32Array(2 * n);
  gen(n, new Rng(seed), opts, out);
  return out;
}

/** n points of a named toy distribution as a [n, 2] float32 tensor (the caller disposes it). */
export function toy(name: string, n: number, seed: number | SeedStream, opts: ToyOptions = {}): tf.Tensor2D {
  return tf.tensor2d(toyArray(name, n, seed, opts), [n, 2], 'float32');
}
