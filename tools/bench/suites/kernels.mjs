// `npm run bench -- kernels [--reps N] [--only SUBSTRING] [--no-cpu] [--no-torch] [--install-torch]`
// Conv / transposed-conv / matMul kernels at the layer shapes of Song's MNIST tutorial ScoreNet (batch 64,
// channels 32-64-128-256, 3×3 valid convs, strides 1-2-2-2, decoder with output_padding 1 on tconv3/tconv2),
// timed per kernel call on the tfjs `wasm` backend with @sbm/wasm-kernels registered, on the `cpu` backend where
// it finishes in reasonable time, and against PyTorch CPU for the same op (NCHW) when torch is available.
// The wasm backend is started the way the product starts it, through @sbm/backend-node's initBackend (threaded
// build, SBM_WASM_THREADS or the CPU count, default 2 here). PyTorch runs the same op at 1 and at 2 threads in the
// same run (torch1Ms, torch2Ms); `ratio_best` = ms / the faster of the two (torchBestMs, torchBestThreads) is the
// figure to quote, `ratio_2threads` = ms / torch2Ms is what this suite used to print as `ratio` (on a busy 2-core
// machine torch's spin-waiting OpenMP threads make 2 threads slower than 1, which flattered sbm). Without torch the
// PyTorch fields are null and the environment line's `torchSkipped` says why.
// Needs packages core, wasm-kernels and backend-node built first:
//   for p in core wasm-kernels backend-node; do (cd packages/$p && npx tsup); done
import os from 'node:os';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { findTorch, torchTimes } from '../lib/torch.mjs';
import { NO_TORCH, TORCH_THREADS, bestOf } from '../lib/torch-threads.mjs';
import { parseArgs, round, timeRuns } from '../lib/timing.mjs';

const B = 64;
const ENCODER = [
  { layer: 'conv1', h: 28, cin: 1, cout: 32, stride: 1 },
  { layer: 'conv2', h: 26, cin: 32, cout: 64, stride: 2 },
  { layer: 'conv3', h: 12, cin: 64, cout: 128, stride: 2 },
  { layer: 'conv4', h: 5, cin: 128, cout: 256, stride: 2 },
  // Not a ScoreNet layer: the project's reference shape (3×3 'same', 32 → 64 channels, batch 32).
  { layer: 'ref', h: 28, cin: 32, cout: 64, stride: 1, same: true, batch: 32 },
];
// Transposed convs: input h×h×cin → output out×out×cout (torch output_padding `op`).
const DECODER = [
  { layer: 'tconv4', h: 2, cin: 256, cout: 128, stride: 2, out: 5, op: 0 },
  { layer: 'tconv3', h: 5, cin: 256, cout: 64, stride: 2, out: 12, op: 1 },
  { layer: 'tconv2', h: 12, cin: 128, cout: 32, stride: 2, out: 26, op: 1 },
  { layer: 'tconv1', h: 26, cin: 64, cout: 1, stride: 1, out: 28, op: 0 },
];
// SplitV at the ScoreNet decoder's skip concatenations (the gradient of concat([h, skip], channels)); no PyTorch
// counterpart (torch.split returns views), so these lines compare with tfjs-backend-wasm's own SplitV only.
const SPLITS = [
  { layer: 'tconv3 input', x: [B, 5, 5, 256], sizes: [128, 128] },
  { layer: 'tconv2 input', x: [B, 12, 12, 128], sizes: [64, 64] },
  { layer: 'tconv1 input', x: [B, 26, 26, 64], sizes: [32, 32] },
];
const DENSE = [
  { layer: 'dense 256→256', a: [B, 256], b: [256, 256], ta: false, tb: false },
  { layer: 'dense 256→256 dA=dy·Wᵀ', a: [B, 256], b: [256, 256], ta: false, tb: true },
  { layer: 'dense 256→256 dW=xᵀ·dy', a: [B, 256], b: [B, 256], ta: true, tb: false },
];

const s = (shape) => `[${shape.join(',')}]`;
const convOut = (h, stride) => Math.floor((h - 3) / stride) + 1;
const nchw = ([n, h, w, c]) => [n, c, h, w];

/** Every kernel call of the suite: tfjs kernel name + inputs/attrs (NHWC) and the matching torch case. */
function buildCases() {
  const cases = [];
  for (const c of ENCODER) {
    const n = c.batch ?? B;
    const pad = c.same ? 'same' : 'valid';
    const o = c.same ? c.h : convOut(c.h, c.stride);
    const x = [n, c.h, c.h, c.cin];
    const w = [3, 3, c.cin, c.cout];
    const y = [n, o, o, c.cout];
    const desc = `${c.layer} x${s(x)} w${s(w)} s${c.stride} ${pad}`;
    const conv = { strides: c.stride, pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    const mflop = (2 * n * o * o * 9 * c.cin * c.cout) / 1e6;
    const t = { x: nchw(x), w: [c.cout, c.cin, 3, 3], stride: c.stride, padding: c.same ? 1 : 0 };
    cases.push(
      {
        kernel: 'Conv2D',
        label: `conv2d ${desc}`,
        mflop,
        shapes: { x, filter: w },
        attrs: { ...conv, dilations: 1 },
        torch: { op: 'conv2d', ...t },
      },
      {
        kernel: 'Conv2DBackpropInput',
        label: `Conv2DBackpropInput ${desc}`,
        mflop,
        shapes: { dy: y, filter: w },
        attrs: { ...conv, inputShape: x },
        torch: { op: 'conv_dx', ...t },
      },
      {
        kernel: 'Conv2DBackpropFilter',
        label: `Conv2DBackpropFilter ${desc}`,
        mflop,
        shapes: { x, dy: y },
        attrs: { ...conv, filterShape: w },
        torch: { op: 'conv_dw', ...t },
      },
    );
  }
  for (const c of DECODER) {
    const x = [B, c.h, c.h, c.cin];
    const w = [3, 3, c.cout, c.cin];
    const y = [B, c.out, c.out, c.cout];
    const desc = `${c.layer} x${s(x)} w${s(w)} → ${s(y)} s${c.stride}`;
    const conv = { strides: c.stride, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined };
    const mflop = (2 * B * c.h * c.h * 9 * c.cin * c.cout) / 1e6;
    const t = { x: nchw(x), w: [c.cin, c.cout, 3, 3], stride: c.stride, outputPadding: c.op };
    cases.push(
      // conv2dTranspose's forward is the Conv2DBackpropInput kernel; its gradients are Conv2D and Conv2DBackpropFilter.
      {
        kernel: 'Conv2DBackpropInput',
        label: `conv2dTranspose ${desc}`,
        mflop,
        shapes: { dy: x, filter: w },
        attrs: { ...conv, inputShape: y },
        torch: { op: 'tconv', ...t },
      },
      {
        kernel: 'Conv2D',
        label: `conv2dTranspose-dx (Conv2D) ${desc}`,
        mflop,
        shapes: { x: y, filter: w },
        attrs: { ...conv, dilations: 1 },
        torch: { op: 'tconv_dx', ...t },
      },
      {
        kernel: 'Conv2DBackpropFilter',
        label: `conv2dTranspose-dw (Conv2DBackpropFilter) ${desc}`,
        mflop,
        shapes: { x: y, dy: x },
        attrs: { ...conv, filterShape: w },
        torch: { op: 'tconv_dw', ...t },
      },
    );
  }
  for (const d of DENSE) {
    const m = d.ta ? d.a[1] : d.a[0];
    const k = d.ta ? d.a[0] : d.a[1];
    const n = d.tb ? d.b[0] : d.b[1];
    const label = `matMul ${d.layer} a${s(d.a)}${d.ta ? 'ᵀ' : ''} b${s(d.b)}${d.tb ? 'ᵀ' : ''}`;
    cases.push({
      kernel: 'BatchMatMul',
      label,
      mflop: (2 * m * n * k) / 1e6,
      shapes: { a: d.a, b: d.b },
      attrs: { transposeA: d.ta, transposeB: d.tb },
      torch: { op: 'matmul', a: d.a, b: d.b, transposeA: d.ta, transposeB: d.tb },
    });
  }
  for (const c of SPLITS) {
    cases.push({
      kernel: 'SplitV',
      label: `SplitV (concat gradient) ${c.layer} x${s(c.x)} → ${c.sizes.join('+')}`,
      mflop: 0,
      shapes: { x: c.x },
      attrs: { numOrSizeSplits: c.sizes, axis: 3 },
      torch: null,
    });
  }
  return cases.map((c, i) => ({ ...c, torch: { ...(c.torch ?? {}), id: i } }));
}

function makeInputs(shapes) {
  const inputs = {};
  for (const [name, shape] of Object.entries(shapes)) inputs[name] = tf.randomNormal(shape, 0, 1, 'float32', 7);
  return inputs;
}

/** Median and min ms of one kernel call (all these backends compute synchronously inside runKernel). */
function timeKernel(c, reps, kernelFunc) {
  const inputs = makeInputs(c.shapes);
  const backend = tf.backend();
  // SplitV returns several outputs.
  const call = kernelFunc
    ? () => {
        for (const o of [kernelFunc({ inputs, backend, attrs: c.attrs })].flat()) backend.disposeData(o.dataId);
      }
    : () => tf.dispose(tf.engine().runKernel(c.kernel, inputs, c.attrs));
  const t = timeRuns(call, { reps, warmup: 2 });
  tf.dispose(Object.values(inputs));
  return t;
}

// Measured on this project's 2-core machine: the cpu backend's Conv2DBackpropFilter is a scalar loop at
// ~9 MFLOP/s (100 s for a 0.93 GFLOP conv), so every ScoreNet layer would take seconds to minutes per call.
const CPU_FILTER_MFLOPS = 9;

export async function run({ args, emit, log }) {
  const opts = parseArgs(args);
  const reps = Math.max(5, Number(opts.reps ?? 7));
  const install = Boolean(opts['install-torch']) || process.env.SBM_BENCH_INSTALL_TORCH === '1';
  let bn;
  try {
    await import('@sbm/wasm-kernels');
    bn = await import('@sbm/backend-node');
  } catch (e) {
    throw new Error(
      `build the packages first: for p in core wasm-kernels backend-node; do (cd packages/$p && npx tsup); done — ${e.message}`,
    );
  }
  const only = typeof opts.only === 'string' ? opts.only : null;
  const cases = buildCases().filter((c) => only === null || c.label.includes(only));

  // The backend's own kernels, captured before ours replace them (tfjs-backend-wasm registers its kernels at
  // import time, ours are registered by initBackend), for the "wasm-tfjs" comparison lines.
  const builtin = {
    Conv2DBackpropInput: tf.getKernel('Conv2DBackpropInput', 'wasm').kernelFunc,
    BatchMatMul: tf.getKernel('BatchMatMul', 'wasm').kernelFunc,
    SplitV: tf.getKernel('SplitV', 'wasm').kernelFunc,
  };
  // initWasm is what initBackend({ backend: 'wasm' }) runs: threaded build, sbm's training kernels registered.
  const info = await bn.initWasm();
  const wasmThreads = info.threads;
  const registered = info.trainingKernels;
  log(
    `wasm backend '${tf.getBackend()}' with ${wasmThreads} thread(s)${info.notes.length ? `; ${info.notes.join('; ')}` : ''}`,
  );

  const torch = opts['no-torch'] ? null : findTorch({ install, log });
  // torchBy[threads][case id] = [medianMs, minMs]
  const torchBy = {};
  if (torch) {
    log(`torch ${torch.version} (${torch.python}): timing at ${TORCH_THREADS.join(' and ')} thread(s)`);
    const torchCases = cases.map((c) => c.torch).filter((t) => t.op !== undefined);
    for (const n of TORCH_THREADS) torchBy[n] = torchTimes(torch, torchCases, reps, n);
  } else
    log(`${opts['no-torch'] ? '--no-torch' : NO_TORCH} (--install-torch or SBM_BENCH_INSTALL_TORCH=1 installs it)`);

  const tfjsVersion = JSON.parse(
    readFileSync(new URL('../../../node_modules/@tensorflow/tfjs/package.json', import.meta.url)),
  ).version;
  emit({
    case: 'environment',
    backend: 'wasm',
    ms: null,
    torchBestMs: null,
    ratio_best: null,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    tfjs: tfjsVersion,
    wasmSimd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    wasmThreads,
    torch: torch?.version ?? null,
    torchThreads: torch ? TORCH_THREADS : null,
    torchDefaultThreads: torch?.threads ?? null,
    ...(torch ? {} : { torchSkipped: opts['no-torch'] ? '--no-torch' : NO_TORCH }),
    registered,
    reps,
  });

  // `ms` and the torch figures are medians of `reps` calls; minMs / torchBestMinMs / minRatio_best are the same
  // from the fastest call (given because other processes on a 2-core machine inflate medians). wasmThreads is on
  // every line (it only applies to backend 'wasm').
  const line = (c, backend, time, extra = {}) => {
    const t = (n) => torchBy[n]?.[c.torch.id] ?? [null, null];
    const best = bestOf(Object.fromEntries(TORCH_THREADS.map((n) => [n, t(n)[0]])));
    const bestMin = bestOf(Object.fromEntries(TORCH_THREADS.map((n) => [n, t(n)[1]])));
    const [t2] = t(2);
    const ms = time?.median ?? null;
    const min = time?.min ?? null;
    emit({
      case: c.label,
      backend,
      ms: round(ms),
      torch1Ms: round(t(1)[0]),
      torch2Ms: round(t2),
      torchBestMs: round(best.ms),
      torchBestThreads: best.threads,
      ratio_best: ms !== null && best.ms ? round(ms / best.ms, 2) : null,
      ratio_2threads: ms !== null && t2 ? round(ms / t2, 2) : null,
      minMs: round(min),
      torchBestMinMs: round(bestMin.ms),
      minRatio_best: min !== null && bestMin.ms ? round(min / bestMin.ms, 2) : null,
      mflop: round(c.mflop, 1),
      wasmThreads,
      ...extra,
    });
  };

  for (const c of cases) {
    line(c, 'wasm', timeKernel(c, reps));
    const fast =
      (c.kernel === 'BatchMatMul' && (c.attrs.transposeA || c.attrs.transposeB)) ||
      c.kernel === 'Conv2DBackpropInput' ||
      c.kernel === 'SplitV';
    if (fast)
      line(c, 'wasm-tfjs', timeKernel(c, 5, builtin[c.kernel]), {
        note: 'tfjs-backend-wasm 4.22 kernel without @sbm/wasm-kernels',
      });
  }

  if (!opts['no-cpu']) {
    await tf.setBackend('cpu');
    for (const c of cases) {
      if (c.kernel === 'Conv2DBackpropFilter' || (c.label.includes(' ref ') && c.kernel !== 'Conv2D')) {
        const est = c.mflop / CPU_FILTER_MFLOPS;
        line(c, 'cpu', null, {
          skipped: `cpu Conv2DBackpropFilter is a scalar loop (~${CPU_FILTER_MFLOPS} MFLOP/s): ~${est.toFixed(0)} s per call`,
        });
        continue;
      }
      line(c, 'cpu', timeKernel(c, 5));
    }
  }
}
