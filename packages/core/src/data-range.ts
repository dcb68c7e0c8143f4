import { SbmError, describeValue } from './errors';

/**
 * The interval data values are scaled to ([0, 1] or [−1, 1] in practice). Configs and checkpoints record it, the
 * data sets produce it, and bits/dim needs it (the dequantization offset depends on its width).
 */
export type DataRange = readonly [number, number];

/**
 * Checks that `range` is [low, high] with finite low < high and returns a fresh copy (mutable, so it also fits code
 * that types ranges as plain `[number, number]`). Throws INVALID_ARGUMENT naming `name` otherwise.
 */
export function checkDataRange(range: unknown, name = 'dataRange'): [number, number] {
  if (
    !Array.isArray(range) ||
    range.length !== 2 ||
    !range.every((v) => typeof v === 'number' && Number.isFinite(v)) ||
    !((range[0] as number) < (range[1] as number))
  ) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected [low, high] with low < high (e.g. [0, 1] or [-1, 1]), got ${Array.isArray(range) ? JSON.stringify(range) : describeValue(range)}`,
      { argument: name, received: range },
    );
  }
  return [range[0] as number, range[1] as number];
}
