import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkSeed, describeValue } from '@sbm/core';

export type MaskName = 'center-box' | 'random' | 'left-half' | 'right-half' | 'top-half' | 'bottom-half';

export const MASK_NAMES: readonly MaskName[] = Object.freeze([
  'center-box',
  'random',
  'left-half',
  'right-half',
  'top-half',
  'bottom-half',
]);

export interface NamedMaskOptions {
  height: number;
  width: number;
  /** Channels of the mask (default 1); every channel of a pixel is known or missing together. */
  channels?: number;
  /** 'random': the fraction of pixels missing, in [0, 1] (default 0.7). */
  ratio?: number;
  /** 'random': the seed (default 0); the same seed gives the same mask on every backend. */
  seed?: number;
}

function checkDim(v: unknown, argument: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new SbmError('INVALID_ARGUMENT', `${argument}: expected a positive integer, got ${describeValue(v)}`, {
      argument,
    });
  }
  return v;
}

/**
 * The 0/1 pixel mask (1 = known) of `name`, as a [height, width] array of 0/1 in plain JS.
 *  - 'center-box': a centred box of ⌊H/2⌋ × ⌊W/2⌋ missing (14×14 of 28×28), offset ⌊(H − ⌊H/2⌋)/2⌋.
 *  - 'random': exactly round(ratio · H · W) pixels missing, chosen by a seeded Fisher–Yates shuffle in JS.
 *  - 'left-half' / 'right-half': ⌊W/2⌋ columns on that side missing; 'top-half' / 'bottom-half': ⌊H/2⌋ rows.
 */
export function namedPixelMask(name: string, opts: NamedMaskOptions): Uint8Array {
  const H = checkDim(opts.height, 'height');
  const W = checkDim(opts.width, 'width');
  const known = new Uint8Array(H * W).fill(1);
  const hideRect = (r0: number, r1: number, c0: number, c1: number) => {
    for (let r = r0; r < r1; r++) known.fill(0, r * W + c0, r * W + c1);
  };
  const hh = Math.floor(H / 2);
  const hw = Math.floor(W / 2);
  switch (name as MaskName) {
    case 'center-box': {
      const r0 = Math.floor((H - hh) / 2);
      const c0 = Math.floor((W - hw) / 2);
      hideRect(r0, r0 + hh, c0, c0 + hw);
      break;
    }
    case 'left-half':
      hideRect(0, H, 0, hw);
      break;
    case 'right-half':
      hideRect(0, H, W - hw, W);
      break;
    case 'top-half':
      hideRect(0, hh, 0, W);
      break;
    case 'bottom-half':
      hideRect(H - hh, H, 0, W);
      break;
    case 'random': {
      const ratio = opts.ratio ?? 0.7;
      if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `ratio: expected the missing fraction in [0, 1], got ${describeValue(ratio)}`,
          {
            argument: 'ratio',
          },
        );
      }
      const stream = new SeedStream(checkSeed(opts.seed ?? 0, 'seed'));
      const missing = Math.round(ratio * H * W);
      // A partial Fisher–Yates shuffle: the first `missing` entries of a uniform random permutation.
      const order = Int32Array.from({ length: H * W }, (_, i) => i);
      for (let i = 0; i < missing; i++) {
        const j = i + Math.floor(stream.uniform() * (H * W - i));
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
        known[order[i]] = 0;
      }
      break;
    }
    default:
      throw new SbmError(
        'UNKNOWN_NAME',
        `name: expected one of ${MASK_NAMES.map((n) => JSON.stringify(n)).join(', ')}, got ${describeValue(name)}`,
        { argument: 'name', expected: [...MASK_NAMES], received: name },
      );
  }
  return known;
}

/**
 * A named inpainting mask [height, width, channels] of 0/1 (1 = known), for maskOperator. See namedPixelMask for the
 * shapes; every channel of a pixel shares its value.
 */
export function namedMask(name: string, opts: NamedMaskOptions): tf.Tensor {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `namedMask: expected options { height, width }, got ${describeValue(opts)}`,
      {
        argument: 'options',
      },
    );
  }
  const C = opts.channels === undefined ? 1 : checkDim(opts.channels, 'channels');
  const known = namedPixelMask(name, opts);
  const values = new Float32Array(known.length * C);
  for (let p = 0; p < known.length; p++) if (known[p]) values.fill(1, p * C, p * C + C);
  return tf.tensor(values, [opts.height, opts.width, C]);
}
