// MNIST half of the inverse suite: the first N test digits (default 100), each task's measurement y = A x₀ (noise-free,
// as score_inverse_problems' tables), every classical baseline of @sbm/inverse-problems and the methods that apply,
// scored by PSNR and SSIM (data range [0, 1]; samples clipped to [0, 1] first, as an image is). One JSON line per
// (task, reconstruction) with mean ± SE over the N images, and one PNG per task: truth / measurement / baselines /
// methods on the first 8 digits.
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { round } from '../../lib/timing.mjs';
import { elapsed } from './common.mjs';

const RESULTS = new URL('../../results/', import.meta.url);
const SCORE_CKPT = '/work/mnist-eval/ckpt';
/** The colour checkpoint (`--color-ckpt DIR`); the test set follows the colour rule it was trained on (its sbm-run.json). */
const DEFAULT_COLOR_CKPT = '/work/color-class/ckpt';
const RANGE = [0, 1];
const SHOW = 8;

/** A mask operator from a namedMask tensor (the operator keeps its own copy). */
function fromMask(ip, mask) {
  try {
    return ip.maskOperator({ mask });
  } finally {
    mask.dispose();
  }
}

/** The tasks: name → operator factory and the methods that apply (projection needs a coordinate mask in some basis). */
export const MNIST_TASKS = {
  'inpaint-box': {
    make: (ip) => fromMask(ip, ip.namedMask('center-box', { height: 28, width: 28, channels: 1 })),
    methods: ['projection', 'repaint', 'dps'],
  },
  // 70 % of the pixels missing (30 % kept), one seeded mask for every image.
  'inpaint-random': {
    make: (ip) => fromMask(ip, ip.namedMask('random', { height: 28, width: 28, channels: 1, ratio: 0.7, seed: 14 })),
    methods: ['projection', 'repaint', 'dps'],
  },
  'superres-4x': {
    make: (ip) => ip.downsampleOperator({ inShape: [28, 28, 1], factor: 4 }),
    methods: ['lambda-projection', 'dps'],
  },
  'cs-25': {
    make: (ip) => ip.gaussianOperator({ inShape: [28, 28, 1], ratio: 0.25, seed: 14 }),
    methods: ['lambda-projection', 'dps'],
  },
  'ct-8': { make: (ip) => ip.radonOperator({ size: 28, views: 8 }), methods: ['lambda-projection', 'dps'] },
  'ct-23': { make: (ip) => ip.radonOperator({ size: 28, views: 23 }), methods: ['lambda-projection', 'dps'] },
  'mri-4x': {
    make: (ip) => ip.mriOperator({ height: 28, width: 28, acceleration: 4, seed: 14 }),
    methods: ['projection', 'lambda-projection', 'dps'],
  },
};
export const MNIST_CASES = [...Object.keys(MNIST_TASKS), 'guidance', 'colorize'];

async function loadScore(mods, dir) {
  const { model, ema, config } = await mods.training.loadCheckpoint(new mods.be.FileCheckpointStorage(), dir);
  ema.copyTo(model);
  const sde = mods.sde.createSde(config.sde);
  return { model, sde, score: mods.models.createScoreFn(model, sde), config };
}

/** Per-image PSNR / SSIM of `x` (clipped to [0, 1]) against `truth`, as mean ± SE. */
function quality(mods, x, truth) {
  const clipped = tf.clipByValue(x, 0, 1);
  try {
    const p = mods.metrics.psnrSummary(clipped, truth, { dataRange: RANGE });
    const s = mods.metrics.ssimSummary(clipped, truth, { dataRange: RANGE });
    return {
      psnr: round(p.mean, 2),
      psnrSe: round(p.se, 2),
      ssim: round(s.mean, 4),
      ssimSe: round(s.se, 4),
    };
  } finally {
    clipped.dispose();
  }
}

/** What the measurement looks like as an image: y itself when it has the image's shape, else Aᵀ y scaled to [0, 1]. */
function measurementImage(op, y) {
  return tf.tidy(() => {
    const same = op.outShape.length === op.inShape.length && op.outShape.every((d, i) => d === op.inShape[i]);
    const v = same ? y : op.adjoint(y);
    const axes = v.shape.slice(1).map((_, i) => i + 1);
    const lo = tf.min(v, axes, true);
    const hi = tf.max(v, axes, true);
    return same ? v : tf.div(tf.sub(v, lo), tf.maximum(tf.sub(hi, lo), 1e-8));
  });
}

async function writePng(mods, name, rows, tag) {
  await mkdir(RESULTS, { recursive: true });
  if (tag) name = `${name}-${tag}`;
  const stacked = tf.tidy(() =>
    tf.concat(
      rows.map((r) => tf.slice(r, 0, SHOW)),
      0,
    ),
  );
  const path = new URL(`inverse-${name}.png`, RESULTS).pathname;
  await mods.dsNode.writeGridPng(path, stacked, { range: RANGE, columns: SHOW });
  stacked.dispose();
  return path;
}

// Options of the PC / carrier sampler: its step count, and Tweedie's denoiser at the end under --denoise-to-zero.
// --eps E ends the grid at E (with --denoise-to-zero: Tweedie's E[x₀ | x_E], smoother the larger E).
const pcOptions = (steps) => ({
  steps: steps.pc,
  ...(steps.denoiseToZero ? { denoiseToZero: true } : {}),
  ...(steps.eps !== undefined ? { eps: steps.eps } : {}),
});

/**
 * One posterior sample, or with --draws K > 1 the posterior mean of K (posteriorMean; its std map is dropped):
 * either way { samples, residual, stats }.
 */
async function reconstruct(ip, call, draws) {
  if (draws <= 1) return ip.conditionalSample(call);
  const pm = await ip.posteriorMean({ ...call, draws });
  pm.std.dispose();
  return { samples: pm.mean, residual: pm.residual, stats: pm.stats };
}

/** The PNG row name of a method's reconstruction: its name, or "… (mean of K)" under --draws K. */
const rowName = (method, steps) => (steps.draws > 1 ? `${method} (mean of ${steps.draws})` : method);

/** Method options at the suite's step budget (see the suite header for why these counts). */
function methodCall(method, base, steps) {
  switch (method) {
    case 'dps':
      return { ...base, method, steps: steps.dps };
    case 'repaint':
      return {
        ...base,
        method,
        jumpLength: steps.repaintJump,
        resamplings: steps.repaintR,
        samplerOptions: { steps: steps.repaint },
      };
    default:
      return {
        ...base,
        method,
        ...(steps.carrier ? { sampler: steps.carrier } : {}),
        samplerOptions: pcOptions(steps),
      };
  }
}

export async function runMnist({ mods, opts, emit, log, selected }) {
  const N = Number(opts.n ?? 100);
  const steps = {
    pc: Number(opts['pc-steps'] ?? 30),
    // --denoise-to-zero: end the PC / carrier samplers with Tweedie's denoiser (as the quality bench's flag).
    denoiseToZero: Boolean(opts['denoise-to-zero']),
    // --draws K: every method reports the mean of K posterior samples (the MMSE estimate) instead of one sample.
    draws: Number(opts.draws ?? 1),
    eps: opts.eps !== undefined ? Number(opts.eps) : undefined,
    dps: Number(opts['dps-steps'] ?? 20),
    repaint: Number(opts['repaint-steps'] ?? 20),
    repaintJump: Number(opts['repaint-jump'] ?? 5),
    // The carrier of projection / lambda-projection / guidance / colorize: DPM-Solver++(3M) SDE (the samplers'
    // default, best MNIST-FD at 20 NFE), not the reference's PC — PC at the 30 steps this budget allows gave samples
    // worse than zero-fill (cs-25 λ-projection 4.9 dB vs 20.6 dB with this carrier on 8 digits). --sampler pc for it.
    carrier: String(opts.sampler ?? 'dpmpp-3m-sde'),
    repaintR: Number(opts['repaint-r'] ?? 3),
    // Guidance scales w (score_sde's conditional sampler is w = 1); one guidance case per scale.
    guidanceScales: String(opts['guidance-scale'] ?? '1')
      .split(',')
      .map(Number),
  };
  const methodsWanted = opts.methods ? String(opts.methods).split(',') : undefined;
  const backend = tf.getBackend();
  const t0 = performance.now();
  const ip = mods.ip;
  const data = await mods.dsNode.loadMnist({ split: 'test', limit: N, range: RANGE });
  const truth = data.images;
  // --ckpt DIR: the gray MNIST score model (not needed for colorize alone, which loads --color-ckpt).
  const scoreCkpt = String(opts.ckpt ?? SCORE_CKPT);
  const grayNeeded = [...Object.keys(MNIST_TASKS), 'guidance'].some((t) => selected(t));
  const net = grayNeeded ? await loadScore(mods, scoreCkpt) : undefined;
  const base0 = {
    part: 'mnist',
    n: N,
    backend,
    checkpointStep: net?.config.step ?? null,
    denoiseToZero: steps.denoiseToZero,
    draws: steps.draws,
    eps: steps.eps ?? null,
  };
  log(
    `mnist: ${N} test digits, score model ${net ? `${scoreCkpt} (sde ${net.config.sde.name})` : '(not needed)'}, steps ${JSON.stringify(steps)}`,
  );

  for (const [task, spec] of Object.entries(MNIST_TASKS)) {
    if (!selected(task)) continue;
    let op;
    try {
      op = await spec.make(ip);
    } catch (e) {
      emit({ ...base0, task, skipped: `operator: ${e.code ?? e.name}: ${e.message}` });
      log(`${task}: operator unavailable (${e.message})`);
      continue;
    }
    const y = tf.tidy(() => op.forward(truth));
    const rows = [truth, measurementImage(op, y)];
    const rowNames = ['truth', 'measurement'];
    let names = [];
    try {
      names = ip.baselinesFor(op);
    } catch (e) {
      log(`${task}: baselinesFor failed (${e.message})`);
    }
    for (const b of names) {
      const w0 = performance.now();
      let x;
      try {
        x = await ip.runBaseline(b, op, y);
      } catch (e) {
        emit({ ...base0, task, kind: 'baseline', method: b, skipped: `${e.code ?? e.name}: ${e.message}` });
        continue;
      }
      const rec = {
        ...base0,
        task,
        kind: 'baseline',
        method: b,
        ...quality(mods, x, truth),
        nfe: 0,
        ms: Math.round(performance.now() - w0),
      };
      emit(rec);
      log(`${task} ${b}: PSNR ${rec.psnr} ± ${rec.psnrSe}, SSIM ${rec.ssim} ± ${rec.ssimSe}`);
      rows.push(x);
      rowNames.push(b);
    }
    for (const method of spec.methods) {
      if (methodsWanted && !methodsWanted.includes(method)) continue;
      const call = methodCall(
        method,
        { sde: net.sde, score: net.score, shape: [N, 28, 28, 1], seed: 21, operator: op, y, noiseStd: 0 },
        steps,
      );
      const w0 = performance.now();
      let res;
      try {
        res = await reconstruct(ip, call, steps.draws);
      } catch (e) {
        emit({ ...base0, task, kind: 'method', method, skipped: `${e.code ?? e.name}: ${e.message}` });
        log(`${task} ${method}: skipped (${e.message})`);
        continue;
      }
      const rec = {
        ...base0,
        task,
        kind: 'method',
        method,
        steps: call.steps ?? call.samplerOptions?.steps,
        ...quality(mods, res.samples, truth),
        residual: round(res.residual.reduce((a, b) => a + b, 0) / res.residual.length, 4),
        nfe: res.stats.nfe,
        vjp: res.stats.vjp ?? 0,
        ms: Math.round(performance.now() - w0),
      };
      emit(rec);
      log(
        `${task} ${method}: PSNR ${rec.psnr} ± ${rec.psnrSe}, SSIM ${rec.ssim} ± ${rec.ssimSe}, nfe ${rec.nfe}, ${rec.ms} ms (${elapsed(t0)} s)`,
      );
      rows.push(res.samples);
      rowNames.push(rowName(method, steps));
    }
    const png = await writePng(mods, task, rows, opts['png-tag']);
    emit({ ...base0, task, kind: 'png', path: png, rows: rowNames });
    tf.dispose([y, ...rows.slice(1)]);
    op.dispose?.();
  }

  if (selected('guidance')) {
    for (const scale of steps.guidanceScales) {
      await runGuidance({ mods, emit, log, net, N, steps, base0, t0, scale, pngTag: opts['png-tag'] });
    }
  }
  if (selected('colorize')) await runColorize({ mods, emit, log, N, steps, base0, opts });
  truth.dispose();
  data.labels.dispose();
  net?.model.dispose?.();
}

/**
 * Class guidance (score_sde's conditional PC sampler: s(x, t) + ∇ log p_t(c | x), scale 1) with the shipped
 * noise-conditional classifier; labels 0..9 cycled over N samples. Agreement = the clean classifier's argmax equals the
 * requested digit; FD per class against that class's test digits (N/10 samples per class: a small-N, upward-biased FD,
 * comparable only at equal N).
 */
async function runGuidance({ mods, emit, log, net, N, steps, base0, t0, scale, pngTag }) {
  let noisy;
  let clean;
  try {
    noisy = await mods.mnistNode.loadDefaultNoisyClassifier({ sde: net.sde });
    clean = await mods.mnistNode.loadDefaultClassifier();
  } catch (e) {
    emit({
      ...base0,
      task: 'guidance',
      kind: 'method',
      method: 'guidance',
      skipped: `${e.code ?? e.name}: ${e.message}`,
    });
    log(`guidance: skipped (${e.message})`);
    return;
  }
  const labels = Array.from({ length: N }, (_, i) => i % 10);
  const w0 = performance.now();
  let res;
  try {
    res = await mods.ip.conditionalSample({
      method: 'guidance',
      sde: net.sde,
      score: net.score,
      shape: [N, 28, 28, 1],
      seed: 21,
      classifier: noisy.logits,
      label: labels,
      numClasses: 10,
      scale,
      ...(steps.carrier ? { sampler: steps.carrier } : {}),
      samplerOptions: pcOptions(steps),
    });
  } catch (e) {
    emit({
      ...base0,
      task: 'guidance',
      kind: 'method',
      method: 'guidance',
      skipped: `${e.code ?? e.name}: ${e.message}`,
    });
    log(`guidance: skipped (${e.message})`);
    noisy.dispose?.();
    clean.dispose?.();
    return;
  }
  const ms = Math.round(performance.now() - w0);
  const test = await mods.dsNode.loadMnist({ split: 'test', range: RANGE });
  const testLabels = await test.labels.data();
  const samples = tf.clipByValue(res.samples, 0, 1);
  const all = await mods.mnistNode.mnistQuality(samples, test.images, { classifier: clean, labels, range: RANGE });
  const perClass = [];
  for (let c = 0; c < 10; c++) {
    const idx = labels.map((l, i) => (l === c ? i : -1)).filter((i) => i >= 0);
    const ref = Array.from(testLabels)
      .map((l, i) => (l === c ? i : -1))
      .filter((i) => i >= 0);
    const sub = tf.gather(samples, idx);
    const refImgs = tf.gather(test.images, ref);
    const q = await mods.mnistNode.mnistQuality(sub, refImgs, {
      classifier: clean,
      labels: idx.map(() => c),
      range: RANGE,
    });
    perClass.push({ digit: c, n: idx.length, agreement: round(q.accuracy, 3), fd: round(q.fd, 2) });
    tf.dispose([sub, refImgs]);
  }
  emit({
    ...base0,
    task: 'guidance',
    kind: 'method',
    method: 'guidance',
    steps: steps.pc,
    scale,
    agreement: round(all.accuracy, 3),
    fd: round(all.fd, 2),
    meanMaxProb: round(all.meanMaxProb, 3),
    perClass,
    nfe: res.stats.nfe,
    vjp: res.stats.vjp ?? 0,
    ms,
  });
  log(`guidance (scale ${scale}): agreement ${all.accuracy}, FD ${all.fd} (${elapsed(t0)} s)`);
  const order = labels.map((l, i) => [l, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const shown = tf.gather(
    samples,
    order
      .filter((_, k) => k % Math.max(1, Math.floor(N / 80)) === 0)
      .slice(0, 80)
      .map((p) => p[1]),
  );
  await mkdir(RESULTS, { recursive: true });
  const tag = `${scale === 1 ? '' : `-w${scale}`}${pngTag ? `-${pngTag}` : ''}`;
  const path = new URL(`inverse-guidance${tag}.png`, RESULTS).pathname;
  await mods.dsNode.writeGridPng(path, shown, { range: RANGE, columns: SHOW });
  emit({ ...base0, task: 'guidance', kind: 'png', path, rows: ['samples sorted by requested digit'] });
  tf.dispose([samples, res.samples, shown, test.images, test.labels]);
  noisy.dispose?.();
  clean.dispose?.();
}

/** Colorization on coloured test digits: 'gray-replicated' and the other baselines; projection when a colour model exists. */
async function runColorize({ mods, emit, log, N, steps, base0, opts }) {
  const COLOR_CKPT = String(opts['color-ckpt'] ?? DEFAULT_COLOR_CKPT);
  let palette = 'random';
  try {
    const run = JSON.parse(readFileSync(`${COLOR_CKPT}/sbm-run.json`, 'utf8'));
    if (String(run.data).startsWith('colored-mnist-class')) palette = 'class';
  } catch {
    // No run file: the random colour rule, the only one before the class palette existed.
  }
  base0 = { ...base0, palette };
  let data;
  let op;
  try {
    data = await mods.dsNode.loadColoredMnist({ split: 'test', n: N, range: RANGE, palette });
    op = mods.ip.grayscaleOperator({ height: 28, width: 28 });
  } catch (e) {
    emit({ ...base0, task: 'colorize', skipped: `${e.code ?? e.name}: ${e.message}` });
    log(`colorize: skipped (${e.message})`);
    return;
  }
  const truth = data.images;
  const y = tf.tidy(() => op.forward(truth));
  const rows = [truth, tf.tidy(() => tf.tile(tf.reshape(y, [N, 28, 28, 1]).div(Math.sqrt(3)), [1, 1, 1, 3]))];
  const rowNames = ['truth', 'measurement (gray)'];
  for (const b of mods.ip.baselinesFor(op)) {
    const x = await mods.ip.runBaseline(b, op, y);
    const rec = { ...base0, task: 'colorize', kind: 'baseline', method: b, ...quality(mods, x, truth), nfe: 0 };
    emit(rec);
    log(`colorize ${b}: PSNR ${rec.psnr}, SSIM ${rec.ssim}`);
    rows.push(x);
    rowNames.push(b);
  }
  if (!existsSync(`${COLOR_CKPT}/checkpoint.json`)) {
    emit({
      ...base0,
      task: 'colorize',
      kind: 'method',
      method: 'projection',
      skipped: `no colour checkpoint at ${COLOR_CKPT}`,
    });
    log(`colorize projection: skipped (no colour checkpoint at ${COLOR_CKPT})`);
  } else {
    const net = await loadScore(mods, COLOR_CKPT);
    const w0 = performance.now();
    const res = await reconstruct(
      mods.ip,
      {
        method: 'projection',
        sde: net.sde,
        score: net.score,
        shape: [N, 28, 28, 3],
        seed: 21,
        operator: op,
        y,
        ...(steps.carrier ? { sampler: steps.carrier } : {}),
        samplerOptions: pcOptions(steps),
      },
      steps.draws,
    );
    const rec = {
      ...base0,
      task: 'colorize',
      kind: 'method',
      method: 'projection',
      steps: steps.pc,
      ...quality(mods, res.samples, truth),
      nfe: res.stats.nfe,
      ms: Math.round(performance.now() - w0),
      checkpoint: COLOR_CKPT,
      checkpointStep: net.config.step ?? null,
    };
    emit(rec);
    rows.push(res.samples);
    rowNames.push(rowName('projection', steps));
    net.model.dispose?.();
  }
  const png = await writePng(mods, 'colorize', rows, opts['png-tag']);
  emit({ ...base0, task: 'colorize', kind: 'png', path: png, rows: rowNames });
  tf.dispose([y, ...rows]);
  data.labels?.dispose?.();
  op.dispose?.();
}
