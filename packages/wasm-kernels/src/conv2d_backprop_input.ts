import * as tf from '@tensorflow/tfjs';
import { maxColFloats } from './conv2d_backprop_filter';
import { partsFor, ptr, runParts, simdFor } from './simd';
import { type KernelArgs, type WasmBackendLike, channelsLastOnly, f32, free, runWasm, view, guarded } from './wasm';

/**
 * One output phase along one axis of the sub-pixel decomposition of a transposed convolution.
 *
 * With stride s, dx[i] = Σ_{o,k : o·s + k − p = i} dy[o]·w[k]. Output rows i = i'·s + r of one phase r only meet
 * taps k ≡ r + p (mod s), i.e. k = k0 + s·j, and then o = i' + c − j with c = (r + p − k0)/s. So each phase is a
 * stride-1 correlation of dy with the flipped sub-filter w[k0 + s·(taps − 1 − jj)], padded by `lo` rows before and
 * `hi` rows after (negative padding = crop). The s² phases together cost exactly the FLOPs of the forward conv,
 * instead of s² times more when dy is dilated with zeros.
 */
interface Phase {
  r: number;
  size: number;
  k0: number;
  taps: number;
  lo: number;
  hi: number;
}

function axisPhases(inSize: number, outSize: number, k: number, s: number, padBefore: number): Phase[] {
  const phases: Phase[] = [];
  for (let r = 0; r < s; r++) {
    const size = r < inSize ? Math.ceil((inSize - r) / s) : 0;
    const k0 = (r + padBefore) % s;
    const taps = k0 < k ? Math.ceil((k - k0) / s) : 0;
    const c = (r + padBefore - k0) / s;
    const lo = taps - 1 - c;
    const hi = size - outSize - lo + taps - 1;
    phases.push({ r, size, k0, taps, lo, hi });
  }
  return phases;
}

export function conv2DBackpropInput({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    inputShape: [number, number, number, number];
  };
  channelsLastOnly(dataFormat, 'Conv2DBackpropInput');
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const P = info.batchSize * info.outHeight * info.outWidth;
  // Measured at the ScoreNet shapes (batch 64): GEMM + col2im beats the phase convs 1.1–3.5× everywhere except
  // stride 1 with many input channels ([32,28,28,32] ← 64, 3×3 'same': one XNNPACK conv 72 ms, GEMM 112 ms),
  // where the single phase is an ordinary conv. The phase convs also need no K×P buffer, so they take over
  // when that buffer would exceed the im2col limit.
  const phases =
    strategy === 'phases' ||
    (strategy === 'auto' &&
      ((info.strideHeight === 1 && info.strideWidth === 1 && info.inChannels >= 16) || K * P > maxColFloats()));
  return phases ? inputGradient(backend, dy, filter, info) : inputGradientGemm(backend, dy, filter, info);
}

type Strategy = 'auto' | 'phases' | 'gemm';
let strategy: Strategy = 'auto';

/** Test/bench hook: force one of the two algorithms. Returns the previous setting. */
export function setBackpropInputStrategy(s: Strategy): Strategy {
  const old = strategy;
  strategy = s;
  return old;
}

/** dx for the forward conv described by `info` (dilation 1), from dy [B,OH,OW,Co] and filter [KH,KW,Ci,Co]. */
export function inputGradient(
  backend: WasmBackendLike,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const B = info.batchSize;
  const H = info.inHeight;
  const W = info.inWidth;
  const C = info.inChannels;
  const OH = info.outHeight;
  const OW = info.outWidth;
  const CO = info.outChannels;
  const KH = info.filterHeight;
  const KW = info.filterWidth;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const rows = axisPhases(H, OH, KH, sh, info.padInfo.top);
  const cols = axisPhases(W, OW, KW, sw, info.padInfo.left);
  const single = sh === 1 && sw === 1;

  const dx = single ? null : backend.makeOutput([B, H, W, C], 'float32');
  if (dx !== null) f32(backend, dx).fill(0); // phases with no taps (k < s) stay zero

  for (const ph of rows) {
    for (const pw of cols) {
      if (ph.size === 0 || pw.size === 0 || ph.taps === 0 || pw.taps === 0) continue;
      const part = phaseCorrelation(backend, dy, filter, ph, pw, KW, C, CO, sh, sw, OH, OW);
      if (dx === null) return part;
      // Scatter the phase into every sh-th row and sw-th column of dx.
      const p = f32(backend, part);
      const d = f32(backend, dx);
      let q = 0;
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < ph.size; i++) {
          const rowBase = ((b * H + i * sh + ph.r) * W + pw.r) * C;
          for (let j = 0; j < pw.size; j++) {
            const at = rowBase + j * sw * C;
            for (let c = 0; c < C; c++) d[at + c] = p[q + c];
            q += C;
          }
        }
      }
      free(backend, part);
    }
  }
  if (dx === null) {
    // Stride 1 always has one phase with taps; reaching here means an empty output.
    const empty = backend.makeOutput([B, H, W, C], 'float32');
    f32(backend, empty).fill(0);
    return empty;
  }
  return dx;
}

function phaseCorrelation(
  backend: WasmBackendLike,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  ph: Phase,
  pw: Phase,
  KW: number,
  C: number,
  CO: number,
  sh: number,
  sw: number,
  OH: number,
  OW: number,
): tf.TensorInfo {
  // Sub-filter [tapsH, tapsW, Co, Ci]: flipped taps, input and output channels swapped.
  const sub = backend.makeOutput([ph.taps, pw.taps, CO, C], 'float32');
  const w = f32(backend, filter);
  const s = f32(backend, sub);
  let q = 0;
  for (let jh = 0; jh < ph.taps; jh++) {
    const kh = ph.k0 + sh * (ph.taps - 1 - jh);
    for (let jw = 0; jw < pw.taps; jw++) {
      const kw = pw.k0 + sw * (pw.taps - 1 - jw);
      const base = (kh * KW + kw) * C * CO;
      for (let co = 0; co < CO; co++) {
        for (let c = 0; c < C; c++) s[q++] = w[base + c * CO + co];
      }
    }
  }
  // Negative padding crops dy rows/columns that no output of this phase reaches.
  const cropTop = Math.max(0, -ph.lo);
  const cropBottom = Math.max(0, -ph.hi);
  const cropLeft = Math.max(0, -pw.lo);
  const cropRight = Math.max(0, -pw.hi);
  let x = dy;
  if (cropTop + cropBottom + cropLeft + cropRight > 0) {
    x = runWasm('Slice', { x: dy }, backend, {
      begin: [0, cropTop, cropLeft, 0],
      size: [-1, OH - cropTop - cropBottom, OW - cropLeft - cropRight, -1],
    });
  }
  const out = runWasm('Conv2D', { x, filter: sub }, backend, {
    strides: [1, 1],
    pad: [
      [0, 0],
      [Math.max(0, ph.lo), Math.max(0, ph.hi)],
      [Math.max(0, pw.lo), Math.max(0, pw.hi)],
      [0, 0],
    ],
    dataFormat: 'NHWC',
    dilations: [1, 1],
    dimRoundingMode: undefined,
  });
  if (x !== dy) free(backend, x);
  free(backend, sub);
  return out;
}

/**
 * dx by GEMM + col2im: cols[P, K] = dy[P, Co] · W[K, Co]ᵀ on XNNPACK (W transposed first, since the backend's
 * transposed products are slow), then every row of cols is scattered back onto the KH·KW input pixels its output
 * position reads, each a contiguous run of Ci channels.
 */
export function inputGradientGemm(
  backend: WasmBackendLike,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const B = info.batchSize;
  const H = info.inHeight;
  const W = info.inWidth;
  const C = info.inChannels;
  const OH = info.outHeight;
  const OW = info.outWidth;
  const CO = info.outChannels;
  const KH = info.filterHeight;
  const KW = info.filterWidth;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const K = KH * KW * C;
  const P = B * OH * OW;

  const wT = runWasm('Transpose', { x: view(filter, [K, CO]) }, backend, { perm: [1, 0] });
  const cols = runWasm('BatchMatMul', { a: view(dy, [P, CO]), b: wT }, backend, {
    transposeA: false,
    transposeB: false,
  });
  free(backend, wT);
  const out = backend.makeOutput([B, H, W, C], 'float32');
  const simd = P > 0 ? simdFor(backend) : null;
  if (simd) {
    // The col2im below on the SIMD module: the Ci runs added four lanes at a time.
    // Images are independent: with worker threads each scatters a range of them.
    const [pc, po] = [ptr(backend, cols), ptr(backend, out)];
    const parts = partsFor(backend, B, OH * OW * K).map(([lo, hi]) => [
      pc + 4 * lo * OH * OW * K,
      po + 4 * lo * H * W * C,
      hi - lo,
      H,
      W,
      C,
      OH,
      OW,
      KH,
      KW,
      sh,
      sw,
      pt,
      pl,
    ]);
    return guarded(backend, out, [cols], () => runParts(backend, simd, 'col2imAdd', parts));
  }
  const d = f32(backend, out);
  const c = f32(backend, cols);
  d.fill(0);
  // The Ci-run adds are unrolled by 4: V8 does not vectorise, and the unrolled loop measured 1.5–2× faster on the
  // ScoreNet shapes (conv2: 9 ms against 18 ms for the 2.7 M adds).
  const C4 = C & ~3;
  let q = 0;
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh - pt;
          if (ih < 0 || ih >= H) {
            q += KW * C;
            continue;
          }
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw - pl;
            if (iw >= 0 && iw < W) {
              let at = ((b * H + ih) * W + iw) * C;
              let from = q;
              const end = at + C4;
              while (at < end) {
                d[at] += c[from];
                d[at + 1] += c[from + 1];
                d[at + 2] += c[from + 2];
                d[at + 3] += c[from + 3];
                at += 4;
                from += 4;
              }
              for (let ci = C4; ci < C; ci++) d[at++] += c[from++];
            }
            q += C;
          }
        }
      }
    }
  }
  free(backend, cols);
  return out;
}
