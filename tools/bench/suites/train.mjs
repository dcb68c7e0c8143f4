// `npm run bench -- train [--steps N] [--only mlp|scorenet|ncsnpp] [--no-cpu] [--no-torch] [--install-torch] [--torch-steps N]`
// `npm run bench -- train --profile [--profile-steps K] [--only scorenet|mlp|ncsnpp]`
// `npm run bench -- train --rounds R [--steps N] [--torch-steps N]` (ScoreNet against PyTorch, alternating; below)
// One @sbm/training step (loss + gradients + global-norm clip + Adam + EMA, as `train()` runs it) per model:
//   - `scorenet`: Song's MNIST tutorial ScoreNet, tutorial VE SDE, tutorial DSM loss, batch 64, 28×28×1 data;
//   - `mlp`: the 2-D MLP (128-128-128, Fourier embedding) on the swiss roll, VP SDE, DSM, batch 512;
//   - `ncsnpp`: a small NCSN++ (nf 32, chMult [1, 2], 1 res block, attention at 8, 16×16×3), VE SDE, batch 16;
// on wasm started through @sbm/backend-node's initBackend (threads: SBM_WASM_THREADS or the CPU count), and on cpu
// for the MLP. msPerStep is the median over the measured steps (after 3 warm-up steps); tensorsAfter100 is the
// change of tf.memory().numTensors over 100 steps (0 = no leak; null when fewer steps ran).
// PyTorch: with a python that has torch (/usr/bin/python3 on Debian with python3-torch), the same ScoreNet step
// (tools/bench/lib/torch_train_scorenet.py) is timed in the same run at 1 and at 2 threads (torch1MsPerStep,
// torch2MsPerStep); `ratio_best` = msPerStep / the faster of the two (torchBestMsPerStep, torchBestThreads) is the
// figure to quote; `ratio_2threads` = msPerStep / torch2MsPerStep is the ratio this suite used to print as `ratio`.
// Without torch these are null and `torchSkipped` says why.
// --profile: tf.profile of K (default 5) training steps of one model (default scorenet) through the real train()
// on wasm, aggregated per kernel name (lib/profile.mjs): one line per kernel {kernel, ms_per_step, calls_per_step,
// share, ...} sorted by time, then a `total` line. One profiled train() of 1 + K steps; its kernels are split into
// steps at the loop's onProgress (after each step's read-back) and step 1 (with the set-up: Adam/EMA slots) and
// the tail (final check) are left out. ms_per_step is self time (nested Identity clones and customGrad inner ops
// are subtracted from their parent); on wasm, kernelMs is the synchronous wall time of each call.
// The workspace sources are bundled with esbuild on the fly (no build needed).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { build } from 'esbuild';
import { aggregate, profiledCount, profileWithDepth, selfTimes } from '../lib/profile.mjs';
import { findTorch } from '../lib/torch.mjs';
import { NO_TORCH, bestOf, torchScoreNetStep } from '../lib/torch-threads.mjs';
import { median, parseArgs, round } from '../lib/timing.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');

async function loadSources() {
  const outDir = join(root, 'node_modules', '.cache', 'sbm-bench-train');
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, 'entry.mjs');
  await build({
    stdin: {
      contents: [
        "export { train } from '@sbm/training';",
        "export { modelFromConfig } from '@sbm/models';",
        "export { createSde } from '@sbm/sde';",
        "export { toy } from '@sbm/datasets';",
        "export { initBackend } from '@sbm/backend-node';",
      ].join('\n'),
      resolveDir: root,
      loader: 'ts',
    },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    plugins: [
      {
        name: 'sbm-sources',
        setup(b) {
          b.onResolve({ filter: /^@sbm\/[^/]+$/ }, (a) => ({
            path: join(root, 'packages', a.path.slice(5), 'src', 'index.ts'),
          }));
          b.onResolve({ filter: /^[^./]/ }, (a) =>
            a.path.startsWith('@sbm/') ? undefined : { path: a.path, external: true },
          );
        },
      },
    ],
  });
  return import(pathToFileURL(outfile).href);
}

const MODELS = {
  scorenet: {
    model: { name: 'scorenet', marginalProbStd: { name: 'tutorial-ve', sigma: 25 } },
    sde: { name: 'tutorial-ve', sigma: 25 },
    loss: 'tutorial-dsm',
    batch: 64,
    data: (tf_, n) => tf_.randomUniform([n, 28, 28, 1], 0, 1, 'float32', 1),
  },
  mlp: {
    model: { name: 'mlp', inputDim: 2 },
    sde: { name: 'vp' },
    loss: 'dsm',
    batch: 512,
    data: (_tf, n, s) => s.toy('swiss-roll', n, 0),
  },
  ncsnpp: {
    model: {
      name: 'ncsnpp',
      imageSize: 16,
      imageChannels: 3,
      nf: 32,
      chMult: [1, 2],
      numResBlocks: 1,
      attnResolutions: [8],
      dropout: 0,
      scaleBySigma: true,
      embedding: 'fourier',
    },
    sde: { name: 've' },
    loss: 'dsm',
    batch: 16,
    data: (tf_, n) => tf_.randomUniform([n, 16, 16, 3], -1, 1, 'float32', 2),
  },
};

async function measure(s, name, backend, steps) {
  const spec = MODELS[name];
  const model = s.modelFromConfig(spec.model, { seed: 0 });
  const sde = s.createSde(spec.sde);
  const data = spec.data(tf, Math.max(1024, spec.batch * 4), s);
  const times = [];
  let last = performance.now();
  let peakRss = process.memoryUsage().rss;
  let countAt3 = null;
  let countAt103 = null;
  const res = await s.train({
    model,
    sde,
    data,
    loss: spec.loss,
    steps: steps + 3,
    batchSize: spec.batch,
    warmup: 100,
    seed: 1,
    onProgress: (p) => {
      const t = performance.now();
      if (p.step > 3) times.push(t - last);
      last = t;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      if (p.step === 3) countAt3 = tf.memory().numTensors;
      if (p.step === 103) countAt103 = tf.memory().numTensors;
    },
  });
  res.ema.dispose();
  model.dispose();
  data.dispose();
  const ms = median(times);
  return {
    model: name,
    batch: spec.batch,
    backend,
    msPerStep: round(ms, 2),
    imagesPerSec: round((spec.batch * 1000) / ms, 1),
    peakRssMb: round(peakRss / 2 ** 20, 1),
    tensorsAfter100: countAt103 === null ? null : countAt103 - countAt3,
    steps,
  };
}

/** The step of `name` as train() runs it, `n` updates per call; `onStep(step)` after each step's read-back. */
function stepRunner(s, name) {
  const spec = MODELS[name];
  const model = s.modelFromConfig(spec.model, { seed: 0 });
  const sde = s.createSde(spec.sde);
  const data = spec.data(tf, Math.max(1024, spec.batch * 4), s);
  // Same options as measure(), onProgress included: it makes the loop read the step's figures back every step.
  const runSteps = async (n, onStep) => {
    const res = await s.train({
      model,
      sde,
      data,
      loss: spec.loss,
      steps: n,
      batchSize: spec.batch,
      warmup: 100,
      seed: 1,
      onProgress: (p) => onStep(p.step),
    });
    res.ema.dispose();
    return null;
  };
  return { runSteps, dispose: () => tf.dispose([model, data]), batch: spec.batch };
}

async function profile(s, opts, emit, log) {
  const name = typeof opts.only === 'string' ? opts.only : 'scorenet';
  if (!MODELS[name]) throw new Error(`--only: expected one of ${Object.keys(MODELS).join(', ')}, got '${name}'`);
  const k = Number(opts['profile-steps'] ?? 5);
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`--profile-steps: expected an integer ≥ 1, got '${opts['profile-steps']}'`);
  const backend = await s.initBackend({ backend: 'wasm', log: (line) => log(line) });
  const wasmThreads = backend.capabilities.threads;
  const r = stepRunner(s, name);
  try {
    log(`${name}: 3 warm-up steps, then a profiled run of ${1 + k} steps (step 1 left out) and the same unprofiled`);
    await r.runSteps(3, () => {});
    // marks[i] = kernels recorded when step i + 1 had finished; walls[i] = the time then.
    const marks = [];
    const walls = [];
    const p = await profileWithDepth(tf, () =>
      r.runSteps(1 + k, () => {
        marks.push(profiledCount(tf));
        walls.push(performance.now());
      }),
    );
    const plain = [];
    await r.runSteps(1 + k, () => plain.push(performance.now()));
    const self = selfTimes(p.kernels, p.depths);
    const rows = aggregate(p.kernels, p.depths, self, marks[0], marks[k], k);
    const total = rows.reduce((acc, x) => acc + x.selfMs, 0);
    const common = { profile: 'kernel', model: name, batch: r.batch, backend: 'wasm', wasmThreads };
    for (const x of rows)
      emit({
        ...common,
        kernel: x.kernel,
        ms_per_step: round(x.selfMs, 3),
        calls_per_step: round(x.calls, 2),
        share: round(x.selfMs / total, 4),
        inclusive_ms_per_step: round(x.inclusiveMs, 3),
        nested_calls_per_step: round(x.nestedCalls, 2),
      });
    // Per step: the sum of self times and the wall time, profiled and not (steps 2 … 1 + K).
    const stepKernelMs = [];
    for (let i = 0; i < k; i++) {
      let sum = 0;
      for (let j = marks[i]; j < marks[i + 1]; j++) sum += self[j];
      stepKernelMs.push(sum);
    }
    const diffs = (xs) => xs.slice(1).map((x, i) => x - xs[i]);
    const wallProfiled = diffs(walls);
    const wallPlain = diffs(plain);
    const spread = (xs) => ({
      median: round(median(xs), 2),
      min: round(Math.min(...xs), 2),
      max: round(Math.max(...xs), 2),
    });
    emit({
      ...common,
      profile: 'total',
      kernel: '(all kernels)',
      ms_per_step: round(total, 3),
      calls_per_step: round(
        rows.reduce((acc, x) => acc + x.calls, 0),
        2,
      ),
      share: 1,
      kernels: rows.length,
      kernel_ms_per_step: spread(stepKernelMs),
      wall_ms_per_step_profiled: spread(wallProfiled),
      wall_ms_per_step: spread(wallPlain),
      kernel_share_of_wall: round(total / (wallProfiled.reduce((a, b) => a + b, 0) / k), 3),
      steps: k,
      selfTime: p.depths !== null,
      timing:
        'tf.profile kernelMs; on wasm = synchronous wall time of each kernel call (backend.time: util.now() around it); ' +
        (p.depths !== null
          ? 'ms_per_step is self time (nested kernels subtracted from their parent)'
          : 'nesting depth unavailable: ms_per_step is inclusive (nested Identity clones counted twice)'),
    });
  } finally {
    r.dispose();
  }
}

/** The PyTorch columns of a line (all null for lines without a PyTorch counterpart). */
function torchFields(torch, best, t2, ms) {
  return {
    torch1MsPerStep: round(torch?.byThreads[1] ?? null, 2),
    torch2MsPerStep: round(t2, 2),
    torchBestMsPerStep: round(best?.ms ?? null, 2),
    torchBestThreads: best?.threads ?? null,
    ratio_best: best?.ms ? round(ms / best.ms, 3) : null,
    ratio_2threads: t2 ? round(ms / t2, 3) : null,
    ...(torch?.skipped ? { torchSkipped: torch.skipped } : {}),
    ...(torch?.version ? { torch: torch.version } : {}),
  };
}

export async function run({ args, emit, log }) {
  const opts = parseArgs(args);
  const s = await loadSources();
  const only = opts.only ? String(opts.only).split(',') : ['scorenet', 'mlp', 'ncsnpp'];
  // Defaults sized for a 2-core machine: 100 steps where a step is fast enough to count leaks over 100.
  const DEFAULT_STEPS = { scorenet: 20, mlp: 100, ncsnpp: 10, 'mlp-cpu': 20 };
  const stepsFor = (name) => Number(opts.steps ?? DEFAULT_STEPS[name]);

  if (opts.profile) return profile(s, opts, emit, log);

  const rounds = Number(opts.rounds ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds: expected an integer ≥ 1, got '${opts.rounds}'`);
  if (rounds > 1) return alternating(s, opts, rounds, stepsFor('scorenet'), emit, log);

  let torch = { byThreads: {}, skipped: null };
  if (only.includes('scorenet')) {
    // --install-torch / SBM_BENCH_INSTALL_TORCH=1: install Debian's python3-torch + OpenBLAS when none is found (as kernels).
    const install = Boolean(opts['install-torch']) || process.env.SBM_BENCH_INSTALL_TORCH === '1';
    const found = opts['no-torch'] ? null : findTorch({ install, log });
    if (found) {
      const torchSteps = Number(opts['torch-steps'] ?? 10);
      log(`torch ${found.version}: timing the ScoreNet step (${torchSteps} steps) at 1 and 2 threads`);
      const t = torchScoreNetStep(found, { steps: torchSteps, log });
      for (const e of t.errors) log(e);
      torch = {
        byThreads: Object.fromEntries(Object.entries(t.byThreads).map(([n, v]) => [n, v?.msPerStep ?? null])),
        skipped: t.errors.length && !Object.values(t.byThreads).some(Boolean) ? t.errors.join('; ') : null,
        version: found.version,
      };
    } else torch.skipped = opts['no-torch'] ? '--no-torch' : NO_TORCH;
    if (torch.skipped) log(`PyTorch columns skipped: ${torch.skipped}`);
  }
  const best = bestOf(torch.byThreads);
  const t2 = torch.byThreads[2] ?? null;

  const backend = await s.initBackend({ backend: 'wasm', log: (line) => log(line) });
  const wasmThreads = backend.capabilities.threads;
  for (const name of only) {
    log(`${name} on wasm`);
    const r = await measure(s, name, 'wasm', stepsFor(name));
    const sc = name === 'scorenet';
    emit({ ...r, wasmThreads, ...torchFields(sc ? torch : null, sc ? best : null, sc ? t2 : null, r.msPerStep) });
  }
  if (only.includes('mlp') && !opts['no-cpu']) {
    await tf.setBackend('cpu');
    log('mlp on cpu');
    const r = await measure(s, 'mlp', 'cpu', stepsFor('mlp-cpu'));
    emit({ ...r, wasmThreads: null, ...torchFields(null, null, null, r.msPerStep) });
  }
}

/**
 * --rounds R (ScoreNet only): R rounds of [PyTorch at 1 and 2 threads, then the sbm step], so that both sides see
 * the same stretches of a noisy machine. One line per round (`round`), then a summary: the median over rounds of
 * each side's per-round median, `ratio_best` from those, and the median and range of the per-round ratios
 * (`ratio_best_by_round`: each round's sbm step over that round's faster PyTorch thread count).
 */
async function alternating(s, opts, rounds, steps, emit, log) {
  const install = Boolean(opts['install-torch']) || process.env.SBM_BENCH_INSTALL_TORCH === '1';
  const found = findTorch({ install, log });
  if (!found) throw new Error(`--rounds compares with PyTorch: ${NO_TORCH}`);
  const backend = await s.initBackend({ backend: 'wasm', log: (line) => log(line) });
  const wasmThreads = backend.capabilities.threads;
  const torchSteps = Number(opts['torch-steps'] ?? 10);
  const per = [];
  for (let r = 1; r <= rounds; r++) {
    const t = torchScoreNetStep(found, { steps: torchSteps, log });
    for (const e of t.errors) log(e);
    const byThreads = Object.fromEntries(Object.entries(t.byThreads).map(([n, v]) => [n, v?.msPerStep ?? null]));
    const best = bestOf(byThreads);
    const m = await measure(s, 'scorenet', 'wasm', steps);
    const row = {
      round: r,
      msPerStep: m.msPerStep,
      torch1: round(byThreads[1] ?? null, 2),
      torch2: round(byThreads[2] ?? null, 2),
    };
    row.ratio_best = best.ms ? round(m.msPerStep / best.ms, 3) : null;
    per.push(row);
    emit({ suite: 'train', model: 'scorenet', batch: 64, backend: 'wasm', wasmThreads, ...row });
  }
  const med = (k) => median(per.map((p) => p[k]).filter((v) => v !== null));
  const ms = med('msPerStep');
  const best = bestOf({ 1: med('torch1'), 2: med('torch2') });
  const ratios = per.map((p) => p.ratio_best).filter((v) => v !== null);
  emit({
    suite: 'train',
    model: 'scorenet',
    batch: 64,
    backend: 'wasm',
    wasmThreads,
    rounds,
    steps,
    msPerStep: round(ms, 2),
    ...torchFields(
      { byThreads: { 1: med('torch1'), 2: med('torch2') }, version: found.version },
      best,
      med('torch2'),
      ms,
    ),
    ratio_best_by_round: { median: round(median(ratios), 3), min: Math.min(...ratios), max: Math.max(...ratios) },
  });
}
