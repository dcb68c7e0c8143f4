// Runs inside headless Chromium (bundled and driven by tools/bench/suites/browser-train.mjs): the MNIST tutorial
// ScoreNet training step (tutorial VE SDE σ = 25, tutorial DSM loss, batch 64, Adam with warm-up, clip 1.0, EMA —
// the real @sbm/training train(), as `npm run bench -- train` times it in Node) on the backend named in the query,
// started through @sbm/backend-browser. Leaves a JSON report on window.__sbmResult and the step times so far on
// window.__sbmProgress (read when a slow software backend runs past the suite's time limit).
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BrowserBackendName } from '@sbm/backend-browser';
import { modelFromConfig } from '@sbm/models';
import { createSde } from '@sbm/sde';
import { train } from '@sbm/training';
import { _internals as wasmKernels } from '@sbm/wasm-kernels';

interface Progress {
  stage: string;
  times: number[];
}

type Win = { __sbmResult?: unknown; __sbmProgress?: Progress };
const w = window as unknown as Win;

async function main(): Promise<Record<string, unknown>> {
  const q = new URLSearchParams(location.search);
  const backend = (q.get('backend') ?? 'wasm') as BrowserBackendName;
  // 'auto': one per logical core, as @sbm/backend-node does in Node (tfjs's own default is its build's choice).
  const tq = q.get('threads');
  const threads = tq === null ? undefined : tq === 'auto' ? navigator.hardwareConcurrency : Number(tq);
  const realHardwareConcurrency = navigator.hardwareConcurrency;
  const steps = Number(q.get('steps') ?? 5);
  const warmup = Number(q.get('warmup') ?? 2);
  const batch = Number(q.get('batch') ?? 64);
  const progress: Progress = { stage: 'init', times: [] };
  w.__sbmProgress = progress;
  // hwc=N: make navigator.hardwareConcurrency report N. tfjs's wasm backend.cc caps its pool at
  // emscripten_num_logical_cores() / 2 = hardwareConcurrency / 2 whatever setThreadsCount asks (it assumes
  // hyper-threading; @sbm/backend-node works around it in Node, @sbm/backend-browser does not): on a 2-core machine
  // a page gets one wasm thread. With hwc = 2 × threads the bench measures what lifting that cap would give.
  const hwc = q.get('hwc');
  if (hwc !== null) Object.defineProperty(navigator, 'hardwareConcurrency', { get: () => Number(hwc) });
  const lines: string[] = [];
  // Backends tfjs had already started before initBackend (no tf call above, so none are expected).
  const startedBefore = Object.keys((tf.engine() as unknown as { registry: object }).registry);
  const b = await initBackend({ backend, wasmPaths: './', wasmThreads: threads, log: (l) => lines.push(l) });
  // simd=0: @sbm/wasm-kernels on their JavaScript loops (A/B against the SIMD module).
  if (q.get('simd') === '0') wasmKernels.setSimdEnabled(false);
  const before = tf.memory().numTensors;
  const model = modelFromConfig({ name: 'scorenet', marginalProbStd: { name: 'tutorial-ve', sigma: 25 } }, { seed: 0 });
  const sde = createSde({ name: 'tutorial-ve', sigma: 25 });
  const data = tf.randomUniform([Math.max(1024, batch * 4), 28, 28, 1], 0, 1, 'float32', 1);
  progress.stage = 'train';
  let last = performance.now();
  const t0 = last;
  // Every step reports (progressEvery 1), so the loop reads each step's figures back (await data()): a step's time
  // includes the GPU finishing it on webgl/webgpu, as in the Node bench.
  const res = await train({
    model,
    sde,
    data,
    loss: 'tutorial-dsm',
    steps: warmup + steps,
    batchSize: batch,
    warmup: 100,
    seed: 1,
    onProgress: (p) => {
      const t = performance.now();
      if (p.step > warmup) progress.times.push(t - last);
      last = t;
    },
  });
  const totalMs = performance.now() - t0;
  res.ema.dispose();
  tf.dispose([model, data]);
  const caps = b.capabilities as unknown as Record<string, unknown>;
  const wasm =
    b.name === 'wasm'
      ? {
          wasmSimd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
          wasmMultithread: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
          // Which emscripten module tfjs loaded: only the threaded build has a PThread pool.
          wasmBuild: (tf.backend() as unknown as { wasm?: { PThread?: unknown } }).wasm?.PThread
            ? 'threaded-simd'
            : 'simd',
          // Whether @sbm/wasm-kernels ran on its SIMD module (compiled by initBackend) or its JavaScript loops.
          simdKernels: wasmKernels.simdActive(tf.backend() as unknown as Parameters<typeof wasmKernels.simdActive>[0]),
          // Threads of those passes (the calling thread + workers over the shared heap).
          simdThreads: wasmKernels.simdThreads(
            tf.backend() as unknown as Parameters<typeof wasmKernels.simdThreads>[0],
          ),
        }
      : {};
  return {
    backend: b.name,
    tfBackend: tf.getBackend(),
    reason: lines.join(' | '),
    threads: caps.threads ?? null,
    threadsAsked: threads ?? null,
    startedBefore,
    ...wasm,
    crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false,
    hardwareConcurrency: realHardwareConcurrency,
    hardwareConcurrencyPatched: hwc === null ? null : Number(hwc),
    userAgent: navigator.userAgent,
    times: progress.times,
    totalMs,
    finalLoss: res.losses.at(-1) ?? null,
    tensorsLeft: tf.memory().numTensors - before,
  };
}

main().then(
  (r) => (w.__sbmResult = r),
  (e: unknown) => (w.__sbmResult = { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }),
);
