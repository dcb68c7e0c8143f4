import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, channelsLastOnly, f32 } from './wasm';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: 'NHWC' | 'NCHW';
}

/**
 * Depthwise conv: y[b,oh,ow,c·M+m] = Σ_{kh,kw} x[b, oh·sh + kh·dh − pt, ow·sw + kw·dw − pl, c] · w[kh,kw,c,m].
 * Both gradients are plain loops over (b, oh, ow, kh, kw) with the channel loop innermost (contiguous in NHWC):
 * the work is Ci·M multiply-adds per tap, M× less than a dense conv, and the wasm backend exposes no depthwise
 * backward primitive to delegate to.
 */
function depthwiseInfo(xShape: number[], filterShape: number[], attrs: DepthwiseAttrs, kernel: string) {
  channelsLastOnly(attrs.dataFormat, kernel);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
    'channelsLast',
  );
}

/** Visits every (x offset, dy offset, filter offset) triple of valid taps; channels are handled by the callback. */
function forEachTap(info: tf.backend_util.Conv2DInfo, visit: (xAt: number, dyAt: number, wAt: number) => void): void {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const M = info.outChannels / C;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyAt = ((b * OH + oh) * OW + ow) * C * M;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - pt;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw * dw - pl;
            if (iw < 0 || iw >= W) continue;
            visit(((b * H + ih) * W + iw) * C, dyAt, (kh * KW + kw) * C * M);
          }
        }
      }
    }
  }
}

export function depthwiseConv2dNativeBackpropInput({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const a = attrs as unknown as DepthwiseAttrs & { inputShape: number[] };
  const info = depthwiseInfo(a.inputShape, filter.shape, a, 'DepthwiseConv2dNativeBackpropInput');
  const C = info.inChannels;
  const M = info.outChannels / C;
  const out = backend.makeOutput(info.inShape, 'float32');
  const dx = f32(backend, out);
  const g = f32(backend, dy);
  const w = f32(backend, filter);
  dx.fill(0);
  forEachTap(info, (xAt, dyAt, wAt) => {
    for (let c = 0; c < C; c++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += g[dyAt + c * M + m] * w[wAt + c * M + m];
      dx[xAt + c] += acc;
    }
  });
  return out;
}

export function depthwiseConv2dNativeBackpropFilter({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as DepthwiseAttrs & { filterShape: number[] };
  const info = depthwiseInfo(x.shape, a.filterShape, a, 'DepthwiseConv2dNativeBackpropFilter');
  const C = info.inChannels;
  const M = info.outChannels / C;
  const out = backend.makeOutput(a.filterShape, 'float32');
  const dw = f32(backend, out);
  const xv = f32(backend, x);
  const g = f32(backend, dy);
  dw.fill(0);
  forEachTap(info, (xAt, dyAt, wAt) => {
    for (let c = 0; c < C; c++) {
      const xc = xv[xAt + c];
      for (let m = 0; m < M; m++) dw[wAt + c * M + m] += xc * g[dyAt + c * M + m];
    }
  });
  return out;
}
