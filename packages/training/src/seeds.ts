import { SeedStream } from '@sbm/core';

/** murmur3's finaliser. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The seed of one purpose (`salt`) at one step: a hash of (run seed, step, salt). Because it depends on nothing
 * else, the step count is the whole random state of a run, and a resumed run draws exactly the same numbers.
 */
export function stepSeed(seed: number, step: number, salt: number): number {
  const key = fmix32((seed ^ Math.floor(seed / 0x100000000)) >>> 0);
  const lo = step % 0x100000000;
  const hi = Math.floor(step / 0x100000000);
  return fmix32(key ^ fmix32(lo ^ fmix32(hi + 0x9e3779b9 * (salt + 1)))) & 0x7fffffff;
}

export const SALT_LOSS = 1;
export const SALT_DROPOUT = 2;
export const SALT_DATA = 3;

/**
 * A seed stream restarted at every step: the score function is built once per run (its checks read SDE scalars,
 * which GPU backends cannot do synchronously), and each step's dropout masks still come from stepSeed alone.
 */
export class RestartableSeedStream extends SeedStream {
  private current = new SeedStream(0);
  restart(seed: number): void {
    this.current = new SeedStream(seed);
  }
  override next(): number {
    return this.current.next();
  }
}
