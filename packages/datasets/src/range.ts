import { checkDataRange, type DataRange } from '@sbm/core';

// The range type and its check live in @sbm/core (likelihood and the configs use the same); these names stay for
// code that imported them from here.
export type { DataRange };
export const checkRange: (range: unknown, name: string) => [number, number] = checkDataRange;

/** Maps a byte b ∈ {0..255} to low + (high − low)·b/255. */
export function byteScaler(range: DataRange): (b: number) => number {
  const [lo, hi] = range;
  const k = (hi - lo) / 255;
  return (b) => lo + k * b;
}
