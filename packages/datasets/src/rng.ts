import { SeedStream, seedStream } from '@sbm/core';

/**
 * Plain-JS random numbers drawn from a SeedStream. Toy data and shuffles are generated on the JS side so the
 * numbers are bit-identical on every tfjs backend, not only equal up to the backend's arithmetic.
 */
export class Rng {
  private readonly stream: SeedStream;
  private spare: number | undefined;

  constructor(seed: number | SeedStream) {
    this.stream = seedStream(seed);
  }

  /** Uniform on [0, 1) with 31 random bits. */
  uniform(): number {
    return this.stream.uniform();
  }

  /** Standard normal (Box–Muller; the second variate of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** Uniform integer in [0, m), exactly uniform (rejection of the top partial block of 31-bit draws). */
  int(m: number): number {
    const limit = Math.floor(0x80000000 / m) * m;
    for (;;) {
      const x = this.stream.next();
      if (x < limit) return x % m;
    }
  }
}
