import * as tf from '@tensorflow/tfjs';
import { slicedWasserstein } from '@sbm/metrics';
import type { ScoreFn } from '@sbm/sde';
import { toyData } from './setup';
import { boundsOf, vectorFieldPng, type Bounds } from './plot';

/**
 * Sliced-W₂ of `samples` against a fresh reference set of the toy data, and the noise floor: the mean distance of
 * three further independent data sets of the same size to that reference (a perfect sampler sits at the floor;
 * it shrinks like 1/√n). 256 projections, fixed seeds, so the figures are reproducible.
 */
export function swdWithFloor(
  samples: tf.Tensor2D,
  toyName: string,
  seed: number,
): { swd: number; floor: number; reference: Float32Array } {
  const n = samples.shape[0];
  const truth = toyData(toyName, n, seed + 101);
  const swd = slicedWasserstein(samples, truth, { projections: 256, seed: 5 });
  let floor = 0;
  for (const s of [102, 103, 104]) {
    const other = toyData(toyName, n, seed + s);
    floor += slicedWasserstein(other, truth, { projections: 256, seed: 5 }) / 3;
    other.dispose();
  }
  const reference = truth.dataSync() as Float32Array;
  truth.dispose();
  return { swd, floor, reference: Float32Array.from(reference) };
}

/**
 * The learned score ∇ₓ log p_t(x) at a small time t on a cells × cells grid over `bounds`, as an arrow plot over the
 * data. t defaults to 0.05 (past the sampling eps): at t → 0 the field is dominated by huge norms right at the data.
 */
export async function scoreFieldPng(
  score: ScoreFn,
  data: ArrayLike<number>,
  opts: { t?: number; cells?: number; bounds?: Bounds; title?: string } = {},
): Promise<Uint8Array> {
  const cells = opts.cells ?? 25;
  const b = opts.bounds ?? boundsOf(data);
  const grid = new Float32Array(cells * cells * 2);
  for (let i = 0; i < cells; i++) {
    for (let j = 0; j < cells; j++) {
      const k = i * cells + j;
      grid[2 * k] = b.xmin + ((j + 0.5) / cells) * (b.xmax - b.xmin);
      grid[2 * k + 1] = b.ymin + ((i + 0.5) / cells) * (b.ymax - b.ymin);
    }
  }
  const t = opts.t ?? 0.05;
  const s = tf.tidy(() => score(tf.tensor2d(grid, [cells * cells, 2]), tf.fill([cells * cells], t)));
  const vectors = (await s.data()) as Float32Array;
  s.dispose();
  return vectorFieldPng({
    data,
    grid,
    vectors,
    cells,
    bounds: b,
    title: opts.title ?? `learned score at t = ${t}`,
  });
}

/** Square bounds around the data (equal axis scales, like the scatter plots). */
export function squareBounds(points: ArrayLike<number>): Bounds {
  const b = boundsOf(points);
  const cx = (b.xmin + b.xmax) / 2;
  const cy = (b.ymin + b.ymax) / 2;
  const half = Math.max(b.xmax - b.xmin, b.ymax - b.ymin) / 2;
  return { xmin: cx - half, xmax: cx + half, ymin: cy - half, ymax: cy + half };
}
