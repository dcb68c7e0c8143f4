import * as tf from '@tensorflow/tfjs';
import { checkSeed } from './validate';
import { brand, hasBrand } from './registry';

/**
 * A deterministic stream of tfjs seeds derived from one user seed (SplitMix32). Every stochastic call in sbm
 * draws its tfjs seed from such a stream, so one user seed fixes a whole run: same seed + same backend ⇒ same
 * result. tfjs draws random numbers on the JS side from the seed (seedrandom), so the numbers themselves are the
 * same on every backend; only the arithmetic that follows may differ in the last bits.
 */
export class SeedStream {
  private state: number;

  constructor(seed: number) {
    checkSeed(seed);
    // Fold a 53-bit seed into 32 bits without losing the high part.
    this.state = (seed ^ Math.floor(seed / 0x100000000)) >>> 0;
  }

  /** Next seed, an integer in [0, 2^31). */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z & 0x7fffffff;
  }

  /** A child stream, independent of later draws from this one. */
  fork(): SeedStream {
    return new SeedStream(this.next());
  }

  /** A float in [0, 1). */
  uniform(): number {
    return this.next() / 0x80000000;
  }
}

brand(SeedStream.prototype, 'seed-stream');

/** Whether `v` is a SeedStream, also one made by another copy of @sbm/core. */
export function isSeedStream(v: unknown): v is SeedStream {
  return hasBrand(v, 'seed-stream');
}

/** Accepts a user seed or an existing stream. */
export function seedStream(seed: number | SeedStream): SeedStream {
  // A brand, not instanceof: a stream made by another copy of @sbm/core (ESM next to CJS) is accepted too.
  return isSeedStream(seed) ? seed : new SeedStream(seed as number);
}

/** Standard normal noise of the given shape. */
export function randomNormal(shape: number[], seed: number | SeedStream): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seedStream(seed).next());
}

/** Uniform noise on [0, 1). */
export function randomUniform(shape: number[], seed: number | SeedStream): tf.Tensor {
  return tf.randomUniform(shape, 0, 1, 'float32', seedStream(seed).next());
}

/** Rademacher noise: ±1 with equal probability. */
export function rademacher(shape: number[], seed: number | SeedStream): tf.Tensor {
  const s = seedStream(seed).next();
  return tf.tidy(() =>
    tf.sub(tf.mul(tf.cast(tf.less(tf.randomUniform(shape, 0, 1, 'float32', s), 0.5), 'float32'), 2), 1),
  );
}
