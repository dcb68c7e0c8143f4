import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkNumber, checkSeed, describeValue } from '@sbm/core';
import { checkBatchShape, type LinearOperator } from '../operator';
import { registerBaseline } from '../baselines';

export interface MriOperatorOptions {
  height: number;
  width: number;
  /** Undersampling factor R ≥ 1: about width / R columns of k-space are measured (1 = fully sampled). */
  acceleration: number;
  /** Fraction of the columns in the fully sampled low-frequency band (default 0.08, at least 2 columns). */
  centerFraction?: number;
  /** Seeds the random columns (a JS-side stream: the same mask on every backend). */
  seed: number;
}

export interface MriColumnMaskOptions {
  width: number;
  acceleration: number;
  centerFraction?: number;
  seed: number;
}

/**
 * The sampled k-space columns (indices into the centred layout, ascending) of the fastMRI-style Cartesian mask:
 * the low-frequency band c − h … c + h around DC (c = ⌊W/2⌋; 2h + 1 ≥ max(2, round(centerFraction·W)), so at least
 * 3 columns) plus seeded random columns until round(W / acceleration) are measured. The mask is conjugate-symmetric:
 * column j is measured iff its mirror (2c − j) mod W is, which keeps the real-image problem a partial isometry
 * (see mriOperator). Columns are added in mirror pairs (DC and, for even W, the Nyquist column 0 are their own
 * mirror), so the total is round(W / acceleration) or one less when only pairs remain — never less than the band.
 */
export function mriColumnMask(opts: MriColumnMaskOptions): number[] {
  const w = checkNumber(opts.width, 'width', { integer: true, min: 1 });
  const acceleration = checkNumber(opts.acceleration, 'acceleration', { min: 1 });
  const centerFraction =
    opts.centerFraction === undefined ? 0.08 : checkNumber(opts.centerFraction, 'centerFraction', { gt: 0, max: 1 });
  const seed = checkSeed(opts.seed);
  const c = Math.floor(w / 2);
  const mirror = (j: number) => (((2 * c - j) % w) + w) % w;
  const chosen = new Set<number>();
  const nc = Math.min(w, Math.max(2, Math.round(centerFraction * w)));
  const h = Math.ceil((nc - 1) / 2);
  for (let j = c - h; j <= c + h; j++) {
    if (j < 0 || j >= w) continue;
    chosen.add(j);
    chosen.add(mirror(j));
  }
  const target = Math.max(chosen.size, Math.round(w / acceleration));
  const groups: number[][] = [];
  for (let j = 0; j < w; j++) {
    const k = mirror(j);
    if (chosen.has(j) || k < j) continue;
    groups.push(k === j ? [j] : [j, k]);
  }
  // Fisher–Yates on a SeedStream: the order depends on the seed only, never on the backend.
  const stream = new SeedStream(seed);
  for (let i = groups.length - 1; i > 0; i--) {
    const r = Math.floor(stream.uniform() * (i + 1));
    [groups[i], groups[r]] = [groups[r], groups[i]];
  }
  for (const g of groups) {
    if (chosen.size + g.length <= target) for (const j of g) chosen.add(j);
    if (chosen.size === target) break;
  }
  return [...chosen].sort((a, b) => a - b);
}

/**
 * The centred unitary DFT matrix of length n, F[j, l] = exp(−2πi (j − c)(l − c) / n) / √n with c = ⌊n/2⌋ — the
 * matrix of fastMRI's fft2c = fftshift ∘ fft ∘ ifftshift, orthonormal. Real and imaginary parts, row-major, float64
 * phases reduced mod n before the trig so large sizes stay exact. Symmetric, so F = Fᵀ.
 */
function centredDft(n: number): { re: Float32Array; im: Float32Array } {
  const c = Math.floor(n / 2);
  const s = 1 / Math.sqrt(n);
  const re = new Float32Array(n * n);
  const im = new Float32Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let l = 0; l < n; l++) {
      const q = ((((j - c) * (l - c)) % n) + n) % n;
      const phi = (-2 * Math.PI * q) / n;
      re[j * n + l] = s * Math.cos(phi);
      im[j * n + l] = s * Math.sin(phi);
    }
  }
  return { re, im };
}

function checkMriOptions(opts: unknown): MriOperatorOptions & { centerFraction: number } {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `mriOperator: expected options { height, width, acceleration, centerFraction?, seed }, got ${describeValue(opts)}`,
      { argument: 'options' },
    );
  }
  const o = opts as Partial<MriOperatorOptions>;
  const height = checkNumber(o.height, 'height', { integer: true, min: 1 });
  const width = checkNumber(o.width, 'width', { integer: true, min: 1 });
  const acceleration = checkNumber(o.acceleration, 'acceleration', { min: 1 });
  const centerFraction =
    o.centerFraction === undefined ? 0.08 : checkNumber(o.centerFraction, 'centerFraction', { gt: 0, max: 1 });
  const seed = checkSeed(o.seed);
  return { height, width, acceleration, centerFraction, seed };
}

/**
 * Single-coil Cartesian MRI: y = M F x for a real image x [H, W, 1], with F the centred unitary 2-D DFT
 * X̂ = F_H X F_Wᵀ (fastMRI's fft2c, k-space DC at (⌊H/2⌋, ⌊W/2⌋)) computed by dense real DFT matrices through matMul
 * (tfjs has no FFT on every backend), and M a column mask (mriColumnMask). Complex k-space is two channels:
 * y [H, W, 2] = (Re, Im); unmeasured columns are 0.
 *
 * As a real map T: ℝ^{HW} → ℝ^{2HW}, x ↦ (Re F x, Im F x) is an isometry (TᵀT = I) onto the Hermitian-symmetric
 * k-space, and T Tᵀ is the projection onto it. The mask is conjugate-symmetric, so M commutes with T Tᵀ; then
 * AᵀA = Tᵀ M T is an orthogonal projection, A is a partial isometry and its pseudo-inverse is exactly A⁺ = Aᵀ:
 * the real part of the inverse DFT of the zero-filled k-space. `decoupled` = { T, Tᵀ, M } for score_sde-style
 * projections in k-space (x ← Tᵀ((1 − m) T x + m ŷ) keeps A x = ŷ for Hermitian ŷ).
 */
export function mriOperator(opts: MriOperatorOptions): LinearOperator {
  const { height: hgt, width: wid, acceleration, centerFraction, seed } = checkMriOptions(opts);
  const columns = mriColumnMask({ width: wid, acceleration, centerFraction, seed });
  const fh = centredDft(hgt);
  const fw = centredDft(wid);
  const maskData = new Float32Array(hgt * wid * 2);
  for (let i = 0; i < hgt; i++) {
    for (const j of columns) {
      maskData[(i * wid + j) * 2] = 1;
      maskData[(i * wid + j) * 2 + 1] = 1;
    }
  }
  const [frH, fiH, frW, fiW, mask] = tf.tidy(() => [
    tf.keep(tf.tensor2d(fh.re, [hgt, hgt])),
    tf.keep(tf.tensor2d(fh.im, [hgt, hgt])),
    tf.keep(tf.tensor2d(fw.re, [wid, wid])),
    tf.keep(tf.tensor2d(fw.im, [wid, wid])),
    tf.keep(tf.tensor3d(maskData, [hgt, wid, 2])),
  ]);
  const held = [frH, fiH, frW, fiW, mask];
  let disposed = false;
  const inShape = [hgt, wid, 1];
  const outShape = [hgt, wid, 2];

  // Z · M on the last axis of [b, H, W] (M is [W, W]).
  const right = (z: tf.Tensor, m: tf.Tensor, b: number) =>
    tf.reshape(tf.matMul(tf.reshape(z, [b * hgt, wid]), m), [b, hgt, wid]);
  // M · Z on the H axis of [b, H, W]: (M Z)ᵀ = Zᵀ Mᵀ = Zᵀ M since the centred DFT matrices are symmetric.
  const left = (m: tf.Tensor, z: tf.Tensor, b: number) =>
    tf.transpose(
      tf.reshape(tf.matMul(tf.reshape(tf.transpose(z, [0, 2, 1]), [b * wid, hgt]), m), [b, wid, hgt]),
      [0, 2, 1],
    );

  // T x: Re X̂ = Fr_H X Fr_W − Fi_H X Fi_W, Im X̂ = Fr_H X Fi_W + Fi_H X Fr_W.
  const transformRaw = (x: tf.Tensor): tf.Tensor => {
    const b = x.shape[0];
    const xs = tf.reshape(x, [b, hgt, wid]);
    const a = right(xs, frW, b);
    const c = right(xs, fiW, b);
    const re = tf.sub(left(frH, a, b), left(fiH, c, b));
    const im = tf.add(left(frH, c, b), left(fiH, a, b));
    return tf.stack([re, im], 3);
  };
  // Tᵀ z = Re(F̄_H Z F̄_W) (the adjoint of the real map; F̄ = F⁻¹ since F is unitary and symmetric).
  const inverseRaw = (z: tf.Tensor): tf.Tensor => {
    const b = z.shape[0];
    const [zr, zi] = tf.unstack(z, 3);
    const pr = tf.add(right(zr, frW, b), right(zi, fiW, b));
    const pi = tf.sub(right(zi, frW, b), right(zr, fiW, b));
    return tf.reshape(tf.add(left(frH, pr, b), left(fiH, pi, b)), [b, hgt, wid, 1]);
  };

  const op: LinearOperator = {
    name: 'mri',
    inShape,
    outShape,
    forward(x: tf.Tensor): tf.Tensor {
      checkBatchShape(x, inShape, 'mri.forward(x)', 'an image');
      return tf.tidy(() => tf.mul(transformRaw(x), mask));
    },
    adjoint(y: tf.Tensor): tf.Tensor {
      checkBatchShape(y, outShape, 'mri.adjoint(y)', 'k-space');
      return tf.tidy(() => inverseRaw(tf.mul(y, mask)));
    },
    // A⁺ = Aᵀ: AᵀA = Tᵀ M T is a projection because the mask is conjugate-symmetric (see above).
    pinv(y: tf.Tensor): tf.Tensor {
      checkBatchShape(y, outShape, 'mri.pinv(y)', 'k-space');
      return tf.tidy(() => inverseRaw(tf.mul(y, mask)));
    },
    decoupled: {
      transform(x: tf.Tensor): tf.Tensor {
        checkBatchShape(x, inShape, 'mri.decoupled.transform(x)', 'an image');
        return tf.tidy(() => transformRaw(x));
      },
      inverse(xt: tf.Tensor): tf.Tensor {
        checkBatchShape(xt, outShape, 'mri.decoupled.inverse(xt)', 'k-space');
        return tf.tidy(() => inverseRaw(xt));
      },
      mask,
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      for (const t of held) t.dispose();
    },
  };
  return op;
}

/**
 * The zero-filled reconstruction: the real part of the inverse centred DFT of k-space with the unmeasured columns
 * set to 0 — Aᵀ y, which is also A⁺ y here. `y` is [batch, H, W, 2]; returns [batch, H, W, 1].
 */
export function zeroFilledInverse(op: LinearOperator, y: tf.Tensor): tf.Tensor {
  if (op === null || typeof op !== 'object' || op.name !== 'mri' || typeof op.adjoint !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator: zeroFilledInverse expects an operator made by mriOperator, got ${op === null || typeof op !== 'object' ? describeValue(op) : `the operator '${String(op.name)}'`}`,
      { argument: 'operator' },
    );
  }
  return op.adjoint(y);
}

registerBaseline('zero-filled-idft', (op, y) => zeroFilledInverse(op, y), {
  operators: ['mri'],
  // ifAbsent: an ESM and a CJS copy of this package loaded together register once.
  ifAbsent: true,
  source: '@sbm/inverse-problems',
  description: 'the real part of the inverse DFT of the zero-filled k-space (Aᵀ y = A⁺ y)',
});
