// `npm run bench -- train [--steps N] [--only mlp|scorenet|ncsnpp] [--no-cpu] [--no-torch] [--torch-steps N]`
// One @sbm/training step (loss + gradients + global-norm clip + Adam + EMA, as `train()` runs it) per model:
//   - `scorenet`: Song's MNIST tutorial ScoreNet, tutorial VE SDE, tutorial DSM loss, batch 64, 28×28×1 data;
//   - `mlp`: the 2-D MLP (128-128-128, Fourier embedding) on the swiss roll, VP SDE, DSM, batch 512;
//   - `ncsnpp`: a small NCSN++ (nf 32, chMult [1, 2], 1 res block, attention at 8, 16×16×3), VE SDE, batch 16;
// on wasm started through @sbm/backend-node's initBackend (threads: SBM_WASM_THREADS or the CPU count), and on cpu
// for the MLP. msPerStep is the median over the measured steps (after 3 warm-up steps); tensorsAfter100 is the
// change of tf.memory().numTensors over 100 steps (0 = no leak; null when fewer steps ran). With a python that has
// torch (/usr/bin/python3 on Debian with python3-torch), the same ScoreNet step in PyTorch on 2 threads is timed
// in the same run (tools/bench/lib/torch_train_scorenet.py) and `ratio` = msPerStep / torchMsPerStep.
// The workspace sources are bundled with esbuild on the fly (no build needed).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { build } from 'esbuild';
import { findTorch } from '../lib/torch.mjs';
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

export async function run({ args, emit, log }) {
  const opts = parseArgs(args);
  const s = await loadSources();
  const only = opts.only ? String(opts.only).split(',') : ['scorenet', 'mlp', 'ncsnpp'];
  // Defaults sized for a 2-core machine: 100 steps where a step is fast enough to count leaks over 100.
  const DEFAULT_STEPS = { scorenet: 20, mlp: 100, ncsnpp: 10, 'mlp-cpu': 20 };
  const stepsFor = (name) => Number(opts.steps ?? DEFAULT_STEPS[name]);

  let torchMs = null;
  if (only.includes('scorenet') && !opts['no-torch']) {
    const torch = findTorch({ log });
    if (torch) {
      const torchSteps = Number(opts['torch-steps'] ?? 5);
      log(`torch ${torch.version}: timing the ScoreNet step (${torchSteps} steps, 2 threads)`);
      const r = spawnSync(
        torch.python,
        [join(here, '..', 'lib', 'torch_train_scorenet.py'), '64', String(torchSteps), '2', '2'],
        { encoding: 'utf8' },
      );
      if (r.status === 0) torchMs = JSON.parse(r.stdout.trim()).msPerStep;
      else log(`torch failed: ${r.stderr.slice(-500)}`);
    } else log('no python with torch: torchMsPerStep null');
  }

  const backend = await s.initBackend({ backend: 'wasm', log: (line) => log(line) });
  const wasmThreads = backend.capabilities.threads;
  for (const name of only) {
    log(`${name} on wasm`);
    const r = await measure(s, name, 'wasm', stepsFor(name));
    const torchField = name === 'scorenet' ? torchMs : null;
    emit({
      ...r,
      wasmThreads,
      torchMsPerStep: round(torchField, 2),
      ratio: torchField ? round(r.msPerStep / torchField, 3) : null,
    });
  }
  if (only.includes('mlp') && !opts['no-cpu']) {
    await tf.setBackend('cpu');
    log('mlp on cpu');
    const r = await measure(s, 'mlp', 'cpu', stepsFor('mlp-cpu'));
    emit({ ...r, wasmThreads: null, torchMsPerStep: null, ratio: null });
  }
}
