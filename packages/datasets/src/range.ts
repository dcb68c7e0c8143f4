import { SbmError, describeValue } from '@sbm/core';

/** The interval pixel values are mapped to ([0, 1] or [−1, 1] in practice); configs record it. */
export type DataRange = [number, number];

export function checkRange(range: unknown, name: string): DataRange {
  if (
    !Array.isArray(range) ||
    range.length !== 2 ||
    !range.every((v) => typeof v === 'number' && Number.isFinite(v)) ||
    !(range[0] < range[1])
  ) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected [low, high] with low < high (e.g. [0, 1] or [-1, 1]), got ${Array.isArray(range) ? JSON.stringify(range) : describeValue(range)}`,
      { argument: name, received: range },
    );
  }
  return [range[0], range[1]];
}

/** Maps a byte b ∈ {0..255} to low + (high − low)·b/255. */
export function byteScaler(range: DataRange): (b: number) => number {
  const [lo, hi] = range;
  const k = (hi - lo) / 255;
  return (b) => lo + k * b;
}
