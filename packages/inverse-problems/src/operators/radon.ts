import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, describeValue } from '@sbm/core';
import { checkBatchShape, type LinearOperator } from '../operator';
import { registerBaseline } from '../baselines';
import { withPinv } from './dense';

export interface RadonOperatorOptions {
  /** The image is [size, size, 1] (square), pixel pitch 1. */
  size: number;
  /** Number of projection angles, uniform in [0, π) (θ_v = v·π/views). May be omitted when `angles` is given. */
  views?: number;
  /** Detector bins per view, unit spacing, centred on the image centre (default ⌈size·√2⌉, the image diagonal). */
  detectors?: number;
  /** Explicit projection angles in radians (then `views`, when given, must equal angles.length). */
  angles?: number[];
  /**
   * Attach the exact pseudo-inverse (default true). It costs an eigendecomposition of the size²×size² normal matrix,
   * so FBP-only uses of large images can turn it off.
   */
  pinv?: boolean;
  /** Relative cut-off of the pseudo-inverse's singular values, passed to withPinv (its default when omitted). */
  rcond?: number;
}

/** The geometry a Radon operator was built with (filteredBackProjection needs the angles). */
export interface RadonGeometry {
  readonly size: number;
  readonly views: number;
  readonly detectors: number;
  /** θ_v in radians, in sinogram row order. */
  readonly angles: readonly number[];
}

export interface FilteredBackProjectionOptions {
  /** 'ram-lak' (the plain ramp |ω|, default) or 'shepp-logan' (the ramp times sinc(ω/2), less ringing/noise). */
  filter?: 'ram-lak' | 'shepp-logan';
}

// The geometry of every operator radonOperator made (a WeakMap, so the operator object stays a plain LinearOperator).
const geometries = new WeakMap<LinearOperator, RadonGeometry>();

/** The geometry of an operator made by radonOperator, or undefined. */
export function radonGeometry(op: LinearOperator): RadonGeometry | undefined {
  return geometries.get(op);
}

// Dense matrices above this many entries (float32: 256 MiB) are refused rather than exhausting memory.
const MAX_ENTRIES = 2 ** 26;

/**
 * CDF of the footprint of a unit pixel square projected on direction (cos θ, sin θ), relative to the pixel centre:
 * the projection of a uniform square is the sum of two independent uniforms of widths |cos θ| and |sin θ|, a
 * trapezoid; its CDF is a difference of clipped quadratics. G(∞) = 1 = the pixel's area.
 */
function footprintCdf(t: number, hi: number, lo: number): number {
  if (lo < 1e-6) {
    // θ within 1e-6 of an axis: the trapezoid is a box of width hi (≈ 1); the quadratic form would cancel badly.
    return Math.min(1, Math.max(0, (t + hi / 2) / hi));
  }
  const c1 = (hi + lo) / 2;
  const c2 = (hi - lo) / 2;
  const r2 = (u: number) => (u > 0 ? u * u : 0);
  return (r2(t + c1) - r2(t + c2) - r2(t - c2) + r2(t - c1)) / (2 * hi * lo);
}

/**
 * The strip-integral (area-weighted) system matrix, stored transposed as W = Aᵀ [size², views·detectors] row-major
 * (entries computed in float64, stored float32): A's entry (v·D + k, p) is the area of pixel p inside detector bin k's unit-wide strip at angle θ_v, divided by the bin width (1). For a
 * piecewise-constant image this is the exact bin average of the line integrals ∫ f(s·u + t·u⊥) dt, so a disk's
 * sinogram approximates the bin-averaged chord 2√(r² − s²).
 */
function systemMatrixT(size: number, angles: readonly number[], detectors: number): Float32Array {
  const n2 = size * size;
  const views = angles.length;
  const m = views * detectors;
  const wt = new Float32Array(n2 * m);
  const c = (size - 1) / 2;
  const d0 = (detectors - 1) / 2;
  for (let v = 0; v < views; v++) {
    const cs = Math.cos(angles[v]);
    const sn = Math.sin(angles[v]);
    const hi = Math.max(Math.abs(cs), Math.abs(sn));
    const lo = Math.min(Math.abs(cs), Math.abs(sn));
    const half = (hi + lo) / 2;
    for (let i = 0; i < size; i++) {
      // Image row i is at height y = c − i (y up), column j at x = j − c; s = x cos θ + y sin θ.
      const y = c - i;
      for (let j = 0; j < size; j++) {
        const x = j - c;
        const sp = x * cs + y * sn;
        const p = i * size + j;
        const kLo = Math.max(0, Math.floor(sp - half + d0 - 0.5));
        const kHi = Math.min(detectors - 1, Math.ceil(sp + half + d0 + 0.5));
        for (let k = kLo; k <= kHi; k++) {
          const sk = k - d0;
          const w = footprintCdf(sk + 0.5 - sp, hi, lo) - footprintCdf(sk - 0.5 - sp, hi, lo);
          if (w > 0) wt[p * m + v * detectors + k] = w;
        }
      }
    }
  }
  return wt;
}

function checkOptions(opts: unknown): { size: number; angles: number[]; detectors: number } {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `radonOperator: expected options { size, views, detectors?, angles? }, got ${describeValue(opts)}`,
      { argument: 'options' },
    );
  }
  const o = opts as RadonOperatorOptions & { height?: unknown; width?: unknown; inShape?: unknown };
  if (o.size === undefined && (o.height !== undefined || o.width !== undefined || o.inShape !== undefined)) {
    // Callers coming from the other operators pass a shape; the Radon transform here is for square images only.
    const hw = Array.isArray(o.inShape) ? o.inShape.slice(0, 2) : [o.height, o.width];
    if (hw[0] !== hw[1]) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `size: radonOperator takes a square image [size, size, 1], got ${describeValue(hw[0])}×${describeValue(hw[1])}`,
        { argument: 'size' },
      );
    }
  }
  const size = checkNumber(o.size, 'size', { integer: true, min: 1 });
  let angles: number[];
  if (o.angles !== undefined) {
    if (
      !Array.isArray(o.angles) ||
      o.angles.length === 0 ||
      !o.angles.every((t) => typeof t === 'number' && Number.isFinite(t))
    ) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `angles: expected a non-empty array of finite numbers (radians), got ${describeValue(o.angles)}`,
        { argument: 'angles' },
      );
    }
    if (o.views !== undefined) {
      checkNumber(o.views, 'views', { integer: true, min: 1 });
      if (o.views !== o.angles.length) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `views: expected angles.length (${o.angles.length}) when angles is given, got ${describeValue(o.views)}`,
          { argument: 'views' },
        );
      }
    }
    angles = o.angles.slice();
  } else {
    const views = checkNumber(o.views, 'views', { integer: true, min: 1 });
    angles = Array.from({ length: views }, (_, v) => (v * Math.PI) / views);
  }
  const detectors =
    o.detectors === undefined
      ? Math.ceil(size * Math.SQRT2)
      : checkNumber(o.detectors, 'detectors', { integer: true, min: 1 });
  if (o.pinv !== undefined && typeof o.pinv !== 'boolean') {
    throw new SbmError('INVALID_ARGUMENT', `pinv: expected a boolean, got ${describeValue(o.pinv)}`, {
      argument: 'pinv',
    });
  }
  const entries = size * size * angles.length * detectors;
  if (entries > MAX_ENTRIES) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `size: the dense Radon matrix would have size²·views·detectors = ${entries} entries, expected at most ${MAX_ENTRIES}; use fewer views or a smaller image`,
      { argument: 'size' },
    );
  }
  return { size, angles, detectors };
}

/**
 * Parallel-beam Radon transform of a square image [size, size, 1] → sinogram [views, detectors]: row v is the
 * projection at θ_v (s = x cos θ + y sin θ with x to the right and y up from the image centre, so θ = 0 sums the
 * columns and θ = π/2 the rows), column k is the bin centred at s_k = k − (detectors − 1)/2. The system matrix is the
 * exact strip integral of the pixel squares, computed once in float64 and stored as a float32 tf matrix; forward is one
 * matMul and adjoint the transposed matMul, so Aᵀ is exact by construction. pinv is the exact SVD pseudo-inverse of
 * the discrete matrix (withPinv).
 *
 * Deviation: score_inverse_problems projects CT measurements through the Fourier-slice route (sinogram → 1-D FFTs →
 * radial lines of a Cartesian 2-D DFT, mask in Fourier space), which is only approximately the Radon transform; here
 * λ-projection uses this discrete operator and its exact pseudo-inverse instead.
 */
export async function radonOperator(opts: RadonOperatorOptions): Promise<LinearOperator> {
  const { size, angles, detectors } = checkOptions(opts);
  const views = angles.length;
  const n2 = size * size;
  const m = views * detectors;
  // W = Aᵀ [size², views·detectors], so forward is x·W on [batch, size²] rows.
  const wt = systemMatrixT(size, angles, detectors);
  const w = tf.keep(tf.tensor2d(wt, [n2, m]));
  let disposed = false;
  const inShape = [size, size, 1];
  const outShape = [views, detectors];
  // Aᵀ y as W·yᵀ, transposed back: no transposeB on the big matrix, which tfjs-wasm materialises on every call
  // (measured on [1, 1024] × [1024, 4140]: 800 ms with transposeB against 32 ms this way; the cpu backend is on par).
  const adjointFlat = (y2: tf.Tensor): tf.Tensor => tf.transpose(tf.matMul(w, tf.transpose(y2 as tf.Tensor2D)));
  // forward with Aᵀ as its gradient: DPS differentiates through A, and tf's own matMul gradient would use transposeB.
  const forwardFlat = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.matMul(args[0] as tf.Tensor2D, w) as tf.Tensor,
    gradFunc: (dy: tf.Tensor) => adjointFlat(dy),
  })) as (x2: tf.Tensor) => tf.Tensor;
  const base: LinearOperator = {
    name: 'radon',
    inShape,
    outShape,
    forward(x: tf.Tensor): tf.Tensor {
      checkBatchShape(x, inShape, 'radon.forward(x)', 'an image');
      return tf.tidy(() => tf.reshape(forwardFlat(tf.reshape(x, [x.shape[0], n2])), [x.shape[0], views, detectors]));
    },
    adjoint(y: tf.Tensor): tf.Tensor {
      checkBatchShape(y, outShape, 'radon.adjoint(y)', 'a sinogram');
      return tf.tidy(() => tf.reshape(adjointFlat(tf.reshape(y, [y.shape[0], m])), [y.shape[0], size, size, 1]));
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      w.dispose();
    },
  };
  let op: LinearOperator = base;
  if (opts.pinv ?? true) {
    try {
      op = await withPinv(base, opts.rcond === undefined ? undefined : { rcond: opts.rcond });
    } catch (e) {
      base.dispose?.();
      throw e;
    }
  }
  geometries.set(op, { size, views, detectors, angles: Object.freeze(angles.slice()) });
  return op;
}

/**
 * The discrete ramp filter h[k] with unit detector spacing (Kak & Slaney, Principles of Computerized Tomographic
 * Imaging, eq. 3.61 for Ram-Lak; the Shepp–Logan kernel is −2 / (π²(4k² − 1))): band-limited, so its DC sum is ~0 and
 * the linear (not circular) convolution below needs no zero-padding.
 */
function rampKernel(k: number, filter: 'ram-lak' | 'shepp-logan'): number {
  if (filter === 'shepp-logan') return -2 / (Math.PI * Math.PI * (4 * k * k - 1));
  if (k === 0) return 0.25;
  if (k % 2 === 0) return 0;
  return -1 / (Math.PI * Math.PI * k * k);
}

/**
 * Angular quadrature weights of the back-projection ∫₀^π dθ: half the gaps to the neighbouring angles on the circle of
 * period π (π / views for uniform angles, the classical FBP scale).
 */
function angleWeights(angles: readonly number[]): number[] {
  const v = angles.length;
  if (v === 1) return [Math.PI];
  const mod = angles.map((t) => ((t % Math.PI) + Math.PI) % Math.PI);
  const order = mod.map((_, i) => i).sort((i, j) => mod[i] - mod[j]);
  const wts = new Array<number>(v).fill(0);
  for (let r = 0; r < v; r++) {
    const prev = r === 0 ? mod[order[v - 1]] - Math.PI : mod[order[r - 1]];
    const next = r === v - 1 ? mod[order[0]] + Math.PI : mod[order[r + 1]];
    wts[order[r]] = (next - prev) / 2;
  }
  return wts;
}

/**
 * Classical filtered back-projection: each projection is convolved along the detectors with the discrete ramp filter
 * (a dense D×D Toeplitz matrix through matMul: the linear convolution, equivalent to a zero-padded DFT of length
 * ≥ 2D − 1, so no wrap-around), weighted by its angular quadrature weight (π / views for uniform angles) and
 * back-projected with the operator's adjoint: f ≈ Σ_v w_v Aᵀ_v (h ∗ p_v), the discretised inverse Radon formula.
 * `sinogram` is [batch, views, detectors]; returns [batch, size, size, 1].
 */
export function filteredBackProjection(
  op: LinearOperator,
  sinogram: tf.Tensor,
  opts: FilteredBackProjectionOptions = {},
): tf.Tensor {
  const g = op === null || typeof op !== 'object' ? undefined : geometries.get(op);
  if (!g) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator: filteredBackProjection expects an operator made by radonOperator, got ${op === null || typeof op !== 'object' ? describeValue(op) : `the operator '${String((op as LinearOperator).name)}'`}`,
      { argument: 'operator' },
    );
  }
  const filter = opts.filter ?? 'ram-lak';
  if (filter !== 'ram-lak' && filter !== 'shepp-logan') {
    throw new SbmError(
      'UNKNOWN_NAME',
      `filter: expected one of "ram-lak", "shepp-logan", got ${describeValue(filter)}`,
      { argument: 'filter' },
    );
  }
  checkBatchShape(sinogram, [g.views, g.detectors], 'sinogram', 'a sinogram');
  const d = g.detectors;
  const h = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) h[i * d + j] = rampKernel(i - j, filter);
  const wv = Float32Array.from(angleWeights(g.angles));
  return tf.tidy(() => {
    const b = sinogram.shape[0];
    const filtered = tf.matMul(tf.reshape(sinogram, [b * g.views, d]), tf.tensor2d(h, [d, d]));
    const weighted = tf.mul(tf.reshape(filtered, [b, g.views, d]), tf.reshape(tf.tensor1d(wv), [1, g.views, 1]));
    return op.adjoint(weighted);
  });
}

registerBaseline('fbp', (op, y) => filteredBackProjection(op, y), {
  operators: ['radon'],
  // ifAbsent: an ESM and a CJS copy of this package loaded together register once.
  ifAbsent: true,
  source: '@sbm/inverse-problems',
  description: 'filtered back-projection (Ram-Lak ramp, π/views quadrature) of the sinogram',
});
