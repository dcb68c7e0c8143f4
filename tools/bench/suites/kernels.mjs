// `npm run bench -- kernels [--reps N] [--only SUBSTRING] [--no-cpu] [--no-torch] [--install-torch]`
// Conv / transposed-conv / matMul kernels at the layer shapes of Song's MNIST tutorial ScoreNet (batch 64,
// channels 32-64-128-256, 3×3 valid convs, strides 1-2-2-2, decoder with output_padding 1 on tconv3/tconv2),
// timed per kernel call on the tfjs `wasm` backend with @sbm/wasm-kernels registered, on the `cpu` backend where
// it finishes in reasonable time, and against PyTorch CPU for the same op (NCHW) when torch is available.
// The wasm backend is started the way the product starts it, through @sbm/backend-node's initBackend (threaded
// build, SBM_WASM_THREADS or the CPU count, default 2 here), and PyTorch runs on the same number of threads
// (`torchMs`, the ratio's denominator) and on 1 thread (`torch1Ms`), so the ratio compares the same cores.
// Needs packages core, wasm-kernels and backend-node built first:
//   for p in core wasm-kernels backend-node; do (cd packages/$p && npx tsup); done
import os from 'node:os';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { findTorch, torchTimes } from '../lib/torch.mjs';
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
  return cases.map((c, i) => ({ ...c, torch: { ...c.torch, id: i } }));
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
  const call = kernelFunc
    ? () => backend.disposeData(kernelFunc({ inputs, backend, attrs: c.attrs }).dataId)
    : () => tf.engine().runKernel(c.kernel, inputs, c.attrs).dispose();
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
  };
  // initWasm is what initBackend({ backend: 'wasm' }) runs: threaded build, sbm's training kernels registered.
  const info = await bn.initWasm();
  const wasmThreads = info.threads;
  const registered = info.trainingKernels;
  log(
    `wasm backend '${tf.getBackend()}' with ${wasmThreads} thread(s)${info.notes.length ? `; ${info.notes.join('; ')}` : ''}`,
  );

  const torch = opts['no-torch'] ? null : findTorch({ install, log });
  let torchMs = {};
  let torch1Ms = {};
  if (torch) {
    log(`torch ${torch.version} (${torch.python}): timing with ${wasmThreads} thread(s) and with 1`);
    const torchCases = cases.map((c) => c.torch);
    torchMs = torchTimes(torch, torchCases, reps, wasmThreads);
    torch1Ms = wasmThreads === 1 ? torchMs : torchTimes(torch, torchCases, reps, 1);
  } else log('torch not available: torchMs = null (use --install-torch or SBM_BENCH_INSTALL_TORCH=1)');

  const tfjsVersion = JSON.parse(
    readFileSync(new URL('../../../node_modules/@tensorflow/tfjs/package.json', import.meta.url)),
  ).version;
  emit({
    case: 'environment',
    backend: 'wasm',
    ms: null,
    torchMs: null,
    ratio: null,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    tfjs: tfjsVersion,
    wasmSimd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    wasmThreads,
    torch: torch?.version ?? null,
    torchThreads: torch ? wasmThreads : null,
    torchDefaultThreads: torch?.threads ?? null,
    registered,
    reps,
  });

  // `ms`/`torchMs` are medians, `ratio` = ms / torchMs (torch on wasmThreads threads); torch1Ms is torch on one
  // thread and ratio1 = ms / torch1Ms (less sensitive to other load: torch's OpenMP threads spin-wait, so on a busy
  // 2-core machine torchMs can exceed torch1Ms many times over). minMs / torchMinMs / minRatio are the same from the fastest run, given because other processes on a
  // 2-core machine inflate medians. wasmThreads is recorded on every line (it only applies to backend 'wasm').
  const line = (c, backend, time, extra = {}) => {
    const [t, tMin] = torchMs[c.torch.id] ?? [null, null];
    const [t1] = torch1Ms[c.torch.id] ?? [null];
    const ms = time?.median ?? null;
    const min = time?.min ?? null;
    emit({
      case: c.label,
      backend,
      ms: round(ms),
      torchMs: round(t),
      ratio: ms !== null && t ? round(ms / t, 2) : null,
      minMs: round(min),
      torchMinMs: round(tMin),
      minRatio: min !== null && tMin ? round(min / tMin, 2) : null,
      torch1Ms: round(t1),
      ratio1: ms !== null && t1 ? round(ms / t1, 2) : null,
      mflop: round(c.mflop, 1),
      wasmThreads,
      ...(torch ? { torchThreads: wasmThreads } : {}),
      ...extra,
    });
  };

  for (const c of cases) {
    line(c, 'wasm', timeKernel(c, reps));
    const fast =
      (c.kernel === 'BatchMatMul' && (c.attrs.transposeA || c.attrs.transposeB)) || c.kernel === 'Conv2DBackpropInput';
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
