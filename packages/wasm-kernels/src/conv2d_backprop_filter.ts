import * as tf from '@tensorflow/tfjs';
import { partsFor, ptr, runParts, simdFor } from './simd';
import { type KernelArgs, channelsLastOnly, f32, free, runWasm, view, guarded } from './wasm';

/**
 * dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·sh + kh·dh − pt, ow·sw + kw·dw − pl, ci] · dy[b,oh,ow,co]
 *
 * computed as one GEMM colT[K, P] · dy[P, Co] with K = KH·KW·Ci and P = B·OH·OW, where colT is the transposed
 * im2col matrix of x. That orientation is the one the wasm backend runs on XNNPACK without transposing either
 * operand (its BatchMatMul with transposeA is a slow scalar loop); colT is built row by row from x transposed to
 * [Ci, B, H, W], so every row of colT is a gather from one channel plane. Alternatives measured on a
 * [32,28,28,32]→64 3×3 conv: a conv over transposed tensors (x as [Ci,H,W,B] convolved with dy as a
 * [OH,OW,B,Co] filter, dilation = stride) ran 1.5–2× slower single-threaded and no faster with XNNPACK's 2
 * threads (conv2 of the ScoreNet: 54–90 ms against 40–56 ms here), and col[P,K] with dyᵀ·col ran 3× slower (the
 * transposes dominate).
 *
 * Dispatch of the colT build (in `im2colT`): unit column stride with output rows of ≥ 16 pixels → one memmove per
 * image row; anything else (stride ≥ 2, short rows) → strided element copies unrolled by 4.
 */
export function conv2DBackpropFilter({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  channelsLastOnly(dataFormat, 'Conv2DBackpropFilter');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  return filterGradient(backend, x, dy, info);
}

/** Shared by Conv2DBackpropFilter: `info` describes the forward conv x → dy. Dilations are honoured. */
export function filterGradient(
  backend: KernelArgs['backend'],
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const B = info.batchSize;
  const C = info.inChannels;
  const CO = info.outChannels;
  const K = info.filterHeight * info.filterWidth * C;
  const P = B * info.outHeight * info.outWidth;
  const OH = info.outHeight;
  const OW = info.outWidth;
  const KH = info.filterHeight;
  const KW = info.filterWidth;
  const filterShape = [KH, KW, C, CO];

  // Few input channels (ScoreNet's first conv and last transposed conv: C = 1, K = 9): the GEMM below would have K
  // output rows and XNNPACK would repack all of dy as its weights for them; direct accumulation on the SIMD module
  // is 3–5× faster there (measured on [64, 28, 28, 1] ↔ [64, 26, 26, 64]: 26 ms → see BENCHMARKS.md).
  const simd = K <= SMALL_K && K * CO <= SMALL_K_ACC && P > 0 ? simdFor(backend) : null;
  if (simd) {
    // Images are independent: with worker threads each takes a range of them. Image b's sums go to `partials`,
    // summed over the images in order afterwards: the same bits for any split.
    const KC = K * CO;
    const OHW = OH * OW;
    const { inHeight: H, inWidth: W } = info;
    const ranges = partsFor(backend, B, H * W * C + OHW * CO);
    const dw = backend.makeOutput(filterShape, 'float32');
    const partials = backend.makeOutput([2 * B * KC], 'float32'); // B × KC float64
    const sb = Math.ceil(KC / 4) * 16; // KC float32, 16-byte aligned
    const scratch = backend.makeOutput([(ranges.length * sb) / 4], 'float32');
    const [px, pdy, ppart, ps] = [x, dy, partials, scratch].map((t) => ptr(backend, t));
    const parts = ranges.map(([lo, hi], i) => [
      px + 4 * lo * H * W * C,
      pdy + 4 * lo * OHW * CO,
      ppart + 8 * lo * KC,
      hi - lo,
      H,
      W,
      C,
      OH,
      OW,
      CO,
      KH,
      KW,
      info.strideHeight,
      info.strideWidth,
      info.dilationHeight,
      info.dilationWidth,
      info.padInfo.top,
      info.padInfo.left,
      ps + i * sb,
    ]);
    return guarded(backend, dw, [scratch, partials], () => {
      runParts(backend, simd, 'filterGradSmallK', parts);
      simd.sumRows64(ppart, B, KC, ptr(backend, dw), KC);
    });
  }

  // [B,H,W,C] → [C,B,H,W] on XNNPACK's transpose (C = 1 needs none: the layouts coincide).
  const xT = C === 1 ? null : runWasm('Transpose', { x }, backend, { perm: [3, 0, 1, 2] });
  // colT is K × (positions of the chunk); batches are split so that it stays under MAX_COL floats, and the
  // per-chunk products are summed (dW is a sum over the batch).
  const perImage = OH * OW;
  const chunk = Math.max(1, Math.min(B, Math.floor(MAX_COL / (K * perImage))));
  let acc: tf.TensorInfo | null = null;
  for (let b0 = 0; b0 < B; b0 += chunk) {
    const nb = Math.min(chunk, B - b0);
    const col = im2colT(backend, xT ?? x, info, b0, nb);
    const dyChunk =
      nb === B
        ? view(dy, [P, CO])
        : runWasm('Slice', { x: view(dy, [B, perImage * CO]) }, backend, {
            begin: [b0, 0],
            size: [nb, perImage * CO],
          });
    const part = runWasm('BatchMatMul', { a: col, b: view(dyChunk, [nb * perImage, CO]) }, backend, {
      transposeA: false,
      transposeB: false,
    });
    free(backend, col);
    if (nb !== B) free(backend, dyChunk);
    if (acc === null) acc = part;
    else {
      const a = f32(backend, acc);
      const p = f32(backend, part);
      for (let i = 0; i < a.length; i++) a[i] += p[i];
      free(backend, part);
    }
  }
  if (xT !== null) free(backend, xT);
  return { dataId: (acc as tf.TensorInfo).dataId, shape: filterShape, dtype: 'float32' };
}

/** Direct accumulation (filterGradSmallK) for K = KH·KW·C up to this, with K·CO accumulators that stay in cache. */
const SMALL_K = 32;
const SMALL_K_ACC = 8192;

/** Largest im2col matrix built at once, in floats (64 MiB): bounds the extra wasm heap a call needs. */
let MAX_COL = 1 << 24;

/** Test hook: a small limit forces the batch-chunked path on small shapes. */
export function setMaxColFloats(n: number): number {
  const old = MAX_COL;
  MAX_COL = n;
  return old;
}

export function maxColFloats(): number {
  return MAX_COL;
}

/**
 * colT[K, nb·OH·OW] for images b0 … b0+nb−1: row (kh, kw, c) holds x[b, oh·sh + kh·dh − pt, ow·sw + kw·dw − pl, c]
 * (0 in the padding) for every output position (b, oh, ow). `xT` is x as [C, B, H, W].
 */
function im2colT(
  backend: KernelArgs['backend'],
  xT: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  b0: number,
  nb: number,
): tf.TensorInfo {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const P = nb * OH * OW;
  const col = backend.makeOutput([KH * KW * C, P], 'float32');
  const simd = P > 0 ? simdFor(backend) : null;
  if (simd) {
    // The loops below on the SIMD module (the same rows; stride-1 runs four lanes at a time).
    // Rows of colT are independent: with worker threads each writes a range of them.
    const K = KH * KW * C;
    const [px, pc] = [ptr(backend, xT), ptr(backend, col)];
    const parts = partsFor(backend, K, P).map(([r0, r1]) => [
      px,
      pc,
      B,
      H,
      W,
      C,
      OH,
      OW,
      KH,
      KW,
      sh,
      sw,
      dh,
      dw,
      pt,
      pl,
      b0,
      nb,
      r0,
      r1,
    ]);
    return guarded(backend, col, [], () => runParts(backend, simd, 'im2colT', parts));
  }
  const src = f32(backend, xT);
  const dst = f32(backend, col);
  // Both views share the heap; indexing one whole-heap view avoids two bounds-checked views in the hot loop.
  const heap = new Float32Array(dst.buffer);
  const srcBase = src.byteOffset >> 2;
  const dstBase = dst.byteOffset >> 2;

  const plane = B * H * W;
  // Long unit-stride rows: every (b, oh) row of a colT row is one contiguous run of an image row, moved with a
  // native memmove (copyWithin on the shared heap view); a JS element loop is several times slower there.
  if (sw === 1 && OW >= 16) {
    let o = dstBase;
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const shift = kw * dw - pl;
        const owLo = Math.min(OW, Math.max(0, -shift));
        const owHi = Math.max(owLo, Math.min(OW, W - shift));
        for (let c = 0; c < C; c++) {
          for (let b = b0; b < b0 + nb; b++) {
            const image = srcBase + c * plane + b * H * W;
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * sh + kh * dh - pt;
              if (ih < 0 || ih >= H) {
                heap.fill(0, o, o + OW);
              } else {
                if (owLo > 0) heap.fill(0, o, o + owLo);
                const s0 = image + ih * W + owLo + shift;
                heap.copyWithin(o + owLo, s0, s0 + owHi - owLo);
                if (owHi < OW) heap.fill(0, o + owHi, o + OW);
              }
              o += OW;
            }
          }
        }
      }
    }
    return col;
  }

  // Otherwise (stride > 1 or short rows) plain strided element loops, with the padding handled per tap by the
  // range of output columns [owLo, owHi) whose input column is inside the image, so the inner loop carries no
  // bounds test. Measured on conv2 of the ScoreNet (colT 288 × 9216): 3–8 ms, against 16–24 ms for a gather
  // through a per-tap offset table with a padding test per element, and ~1 s for the same colT built by 9 calls of
  // the backend's StridedSlice kernel (a generic per-element C++ loop).
  let o = dstBase;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const shift = kw * dw - pl;
      const owLo = Math.min(OW, Math.max(0, Math.ceil(-shift / sw)));
      const owHi = Math.max(owLo, Math.min(OW, Math.floor((W - 1 - shift) / sw) + 1));
      for (let c = 0; c < C; c++) {
        for (let b = b0; b < b0 + nb; b++) {
          const image = srcBase + c * plane + b * H * W;
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * sh + kh * dh - pt;
            if (ih < 0 || ih >= H) {
              heap.fill(0, o, o + OW);
              o += OW;
              continue;
            }
            if (owLo > 0) heap.fill(0, o, o + owLo);
            let si = image + ih * W + owLo * sw + shift;
            let ow = owLo;
            // Unrolled by 4 (V8 does not vectorise): ~2× on conv2's rows of 12.
            for (const end = owLo + ((owHi - owLo) & ~3); ow < end; ow += 4) {
              heap[o + ow] = heap[si];
              heap[o + ow + 1] = heap[si + sw];
              heap[o + ow + 2] = heap[si + 2 * sw];
              heap[o + ow + 3] = heap[si + 3 * sw];
              si += 4 * sw;
            }
            for (; ow < owHi; ow++) {
              heap[o + ow] = heap[si];
              si += sw;
            }
            if (owHi < OW) heap.fill(0, o + owHi, o + OW);
            o += OW;
          }
        }
      }
    }
  }
  return col;
}
