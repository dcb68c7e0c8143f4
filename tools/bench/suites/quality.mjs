// `npm run bench -- quality [--epochs E (7) | --steps N] [--batch B (64)] [--lr X (5e-4)] [--warmup W (300)]
//   [--ema-decay D (0.999)] [--seed S (0)] [--out DIR (runs/bench-quality)] [--n N (1000)] [--chunk C (250)]
//   [--pc-steps K (200)] [--snr R (0.16)] [--dpm-steps K (50)] [--eps E] [--denoise-to-zero] [--nll-n M (100)]
//   [--nll-batch 50] [--only pc,dpm,nll] [--no-train] [--cases name@steps,...] [--case-opts JSON] [--time64]`
// `--cases pc@1000,unipc@20,dpmpp-3m@10` replaces the pc / dpm cases by any registered samplers at the given step
// counts (pc: reverse diffusion + Langevin at snr R; every other name gets `{ steps }` plus, from --case-opts
// '{"unipc":{"order":3}}', its own options); `--time64` also times 64 samples at batch 64 per case of ≤ 100 steps
// (after a warm-up batch of 8), the wall time a user waits for one grid.
// Sample quality of the MNIST ScoreNet (Song's tutorial network, tutorial VE SDE σ = 25, data in [0, 1]):
//  1. trains it with the CLI exactly as a user would (`sbm train --data mnist --sde tutorial-ve --model scorenet
//     --epochs E …` into --out; resumed when --out already holds a checkpoint, so an interrupted bench continues and
//     a finished one is only evaluated). The `train` line reports the steps, the wall time of this invocation and
//     the checkpoint's mean loss over the last 100 steps; `--no-train` evaluates --out as it is.
//  2. draws n samples from the EMA weights with PC (reverse diffusion + Langevin, snr R, K steps, 2K NFE; score_sde's
//     sampler: eps 1e-3, the last step's x_mean) and with DPM-Solver++(2M) (K NFE), in chunks of C (seeds
//     S + 1000·k). `--eps E` ends both grids at E, `--denoise-to-zero` ends both with Tweedie's denoiser instead of
//     their last step (beyond score_sde; see @sbm/samplers). They are scored with
//     @sbm/mnist-eval's shipped classifier: MNIST-FD (FID's formula on the classifier's 128-d penultimate features) against the 10,000 test
//     images, mean max-softmax, predicted class counts and the number of classes with ≥ 1% of the samples.
//     `fdFloor` = FD of the first n training images against the same test statistics (what perfect samples score at
//     this n; FD is biased upwards at small n). Samples are clipped to [0, 1] (the tutorial clamps them too); the
//     first 100 go to DIR/quality-<sampler>.png.
//  3. test bits/dim of the first M test images: probability-flow ODE (RK45, rtol = atol = 1e-5), Hutchinson
//     divergence with one Rademacher probe, uniform dequantization, ± = standard error over images.
// Needs the built dists and CLI: `npm run build` (or `npx nx run @sbm/cli:build`).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { parseArgs, round } from '../lib/timing.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const cli = join(root, 'apps', 'cli', 'dist', 'cli.js');

function runCli(args, log) {
  log(`node apps/cli/dist/cli.js ${args.join(' ')}`);
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'inherit', 'inherit'], cwd: root });
    child.on('error', rej);
    child.on('exit', (code, signal) =>
      code === 0 ? res() : rej(new Error(`sbm train exited with ${signal ?? `code ${code}`}`)),
    );
  });
}

/** Step recorded in a checkpoint directory's pointer file, or null when there is none. */
function checkpointStep(dir) {
  const pointer = join(dir, 'checkpoint.json');
  if (!existsSync(pointer)) return null;
  try {
    return JSON.parse(readFileSync(pointer, 'utf8')).step ?? null;
  } catch {
    return null;
  }
}

const stdErr = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
  return Math.sqrt(v / xs.length);
};

export async function run({ args, emit, log }) {
  const o = parseArgs(args);
  const out = resolve(root, String(o.out ?? 'runs/bench-quality'));
  const seed = Number(o.seed ?? 0);
  const n = Number(o.n ?? 1000);
  const chunk = Number(o.chunk ?? 250);
  const only = new Set(String(o.only ?? 'pc,dpm,nll').split(','));
  if (!existsSync(cli)) throw new Error('apps/cli/dist/cli.js is missing: run `npm run build` first');

  // 1. Training through the CLI.
  if (!o['no-train']) {
    const budget = o.steps !== undefined ? ['--steps', String(o.steps)] : ['--epochs', String(o.epochs ?? 7)];
    const before = checkpointStep(out);
    const t0 = performance.now();
    await runCli(
      [
        'train',
        '--data',
        'mnist',
        '--sde',
        'tutorial-ve',
        '--model',
        'scorenet',
        ...budget,
        '--batch',
        String(o.batch ?? 64),
        '--lr',
        String(o.lr ?? 5e-4),
        '--warmup',
        String(o.warmup ?? 300),
        '--ema-decay',
        String(o['ema-decay'] ?? 0.999),
        '--seed',
        String(seed),
        '--ckpt-every',
        '500',
        '--out',
        out,
        ...(before !== null ? ['--resume'] : []),
      ],
      log,
    );
    emit({
      case: 'train',
      out,
      fromStep: before ?? 0,
      toStep: checkpointStep(out),
      seconds: round((performance.now() - t0) / 1000, 1),
    });
  }

  let m;
  try {
    m = {
      backend: await import('@sbm/backend-node'),
      training: await import('@sbm/training'),
      models: await import('@sbm/models'),
      samplers: await import('@sbm/samplers'),
      likelihood: await import('@sbm/likelihood'),
      sde: await import('@sbm/sde'),
      datasetsNode: await import('@sbm/datasets/node'),
      evalNode: await import('@sbm/mnist-eval/node'),
    };
  } catch (e) {
    throw new Error(`build the dists first (npm run build) — ${e.message}`);
  }
  const backend = await m.backend.initBackend();
  const storage = new m.backend.FileCheckpointStorage();
  const { model, ema, config } = await m.training.loadCheckpoint(storage, out);
  ema.copyTo(model);
  const sde = m.sde.createSde(config.sde);
  const score = m.models.createScoreFn(model, sde);
  const range = config.dataRange ?? [0, 1];
  const classifier = await m.evalNode.loadDefaultClassifier();
  const lossTail = config.lossHistory?.values?.slice(-10) ?? [];
  const base = {
    backend: backend.name,
    step: config.step,
    model: 'scorenet',
    params: model.countParams(),
    sde: config.sde.name,
    lossLast100: lossTail.length ? round(lossTail.reduce((a, b) => a + b, 0) / lossTail.length, 2) : null,
  };

  const test = await m.datasetsNode.loadMnist({ split: 'test', range: [0, 1] });
  const refStats = await m.evalNode.featureStatistics(classifier, test.images);
  const trainHead = await m.datasetsNode.loadMnist({ split: 'train', range: [0, 1], limit: n });
  const floor = await m.evalNode.mnistQuality(trainHead.images, refStats, { classifier });
  tf.dispose([trainHead.images, trainHead.labels]);
  log(`test-set statistics ready; floor FD at n = ${n}: ${floor.fd.toFixed(3)}`);

  const samplers = [];
  const ending = {
    ...(o.eps !== undefined ? { eps: Number(o.eps) } : {}),
    ...(o['denoise-to-zero'] ? { denoiseToZero: true } : {}),
  };
  const tag = o['denoise-to-zero'] || o.eps !== undefined ? '-variant' : '';
  const caseOpts = o['case-opts'] ? JSON.parse(String(o['case-opts'])) : {};
  if (o.cases) {
    for (const c of String(o.cases).split(',')) {
      const [name, stepsText] = c.split('@');
      const steps = Number(stepsText);
      const extra = caseOpts[name] ?? {};
      const opts =
        name === 'pc'
          ? { sampler: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', snr: Number(o.snr ?? 0.16), steps }
          : { sampler: name, steps, ...extra };
      samplers.push({ name: `${name}@${steps}`, opts: { ...opts, ...ending } });
    }
    only.delete('pc');
    only.delete('dpm');
  }
  if (only.has('pc')) {
    const steps = Number(o['pc-steps'] ?? 200);
    const snr = Number(o.snr ?? 0.16);
    samplers.push({
      name: 'pc',
      opts: { sampler: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', snr, steps, ...ending },
    });
  }
  if (only.has('dpm')) {
    samplers.push({
      name: 'dpm-solver',
      opts: { sampler: 'dpm-solver', steps: Number(o['dpm-steps'] ?? 50), ...ending },
    });
  }
  for (const s of samplers) {
    // The 64-sample timing is for the few-step cases (a 1000-step PC grid of 64 would cost minutes for nothing).
    if (o.time64 && (s.opts.steps ?? 0) <= 100) {
      const warm = await m.samplers.sample({ ...s.opts, sde, score, shape: [8, 28, 28, 1], seed });
      warm.samples.dispose();
      const t64 = performance.now();
      const r = await m.samplers.sample({ ...s.opts, sde, score, shape: [64, 28, 28, 1], seed });
      await r.samples.data();
      r.samples.dispose();
      emit({
        case: 'time64',
        sampler: s.name,
        ...base,
        nfe: r.stats.nfe,
        seconds: round((performance.now() - t64) / 1000, 2),
      });
    }
    const parts = [];
    let nfe = 0;
    const t0 = performance.now();
    for (let k = 0; k * chunk < n; k++) {
      const size = Math.min(chunk, n - k * chunk);
      const r = await m.samplers.sample({ ...s.opts, sde, score, shape: [size, 28, 28, 1], seed: seed + 1000 * k });
      parts.push(tf.tidy(() => tf.clipByValue(r.samples, range[0], range[1])));
      r.samples.dispose();
      nfe = r.stats.nfe;
      log(`${s.name}: ${Math.min(n, (k + 1) * chunk)}/${n} samples`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const samples = tf.concat(parts);
    tf.dispose(parts);
    try {
      const q = await m.evalNode.mnistQuality(samples, refStats, { classifier, range });
      const png = join(out, `quality-${s.name.replace('@', '-')}${tag}.png`);
      const head = samples.slice(0, Math.min(100, n));
      await m.datasetsNode.writeGridPng(png, head, { range, columns: 10 });
      head.dispose();
      emit({
        case: s.name,
        ...base,
        ...(o.cases ? { options: s.opts } : {}),
        steps: s.opts.steps,
        ...(s.opts.snr !== undefined ? { snr: s.opts.snr } : {}),
        eps: s.opts.eps ?? sde.samplingEps,
        denoiseToZero: s.opts.denoiseToZero ?? false,
        nfe,
        n,
        fd: round(q.fd, 3),
        fdFloor: round(floor.fd, 3),
        meanMaxProb: round(q.meanMaxProb, 4),
        classesCovered: q.classesCovered,
        classCounts: q.classCounts,
        seconds: round(seconds, 1),
        png,
      });
    } finally {
      samples.dispose();
    }
  }

  if (only.has('nll')) {
    const count = Number(o['nll-n'] ?? 100);
    const batch = Number(o['nll-batch'] ?? 50);
    const x = test.images.slice(0, count);
    const bpd = [];
    let nfe = 0;
    const t0 = performance.now();
    for (let i = 0; i < count; i += batch) {
      const xb = x.slice(i, Math.min(batch, count - i));
      const r = await m.likelihood.logLikelihood(score, xb, sde, seed + i, {
        divergence: 'rademacher',
        dataRange: range,
        dequantize: true,
      });
      xb.dispose();
      bpd.push(...r.bpd);
      nfe += r.nfe;
      log(`nll: ${Math.min(count, i + batch)}/${count} test images, ${r.nfe} NFE`);
    }
    x.dispose();
    const mean = bpd.reduce((a, b) => a + b, 0) / bpd.length;
    emit({
      case: 'nll',
      ...base,
      n: count,
      divergence: 'rademacher',
      bpd: round(mean, 4),
      bpdStdErr: round(stdErr(bpd), 4),
      nfe,
      seconds: round((performance.now() - t0) / 1000, 1),
    });
  }
  tf.dispose([test.images, test.labels]);
  ema.dispose();
  model.dispose();
}
