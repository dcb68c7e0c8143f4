import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, describeValue } from '@sbm/core';
import { toyArray, toyNames } from '@sbm/datasets';
import { logLikelihood } from '@sbm/likelihood';
import { MlpScoreModel, createScoreFn } from '@sbm/models';
import { listSamplers, sample, samplerEntry } from '@sbm/samplers';
import { createSde, listSdes, type ScoreFn, type Sde } from '@sbm/sde';
import { train } from '@sbm/training';
import type { Handler, HandlerContext } from '../protocol';
import { VIEW } from './view';

/*
 * The 2-D playground's compute: an MLP score model trained with @sbm/training on the chosen points, and everything
 * drawn from it (score field, trajectories, samples, Langevin chains, exact-likelihood density). One model at a
 * time, kept between requests. Nothing here reads tensors synchronously: every read is an awaited data(), so the
 * same code runs on WebGPU, where dataSync stalls the GPU queue.
 */

interface State {
  sde: Sde;
  model: MlpScoreModel;
  score: ScoreFn;
  /** The training points (flat x, y pairs), for the forward-SDE panel. */
  points: Float32Array;
}

let state: State | undefined;
/** Bumped by every train request, so a run superseded by a newer one never installs its model. */
let generation = 0;

/** Drops the trained model (a backend switch: its weights live on the old backend). */
export function resetPlayground(): void {
  generation++;
  state?.model.dispose();
  state = undefined;
}

function need(): State {
  if (!state) {
    throw new SbmError('INVALID_ARGUMENT', 'model: expected a trained model, got none (train one first)', {
      argument: 'model',
    });
  }
  return state;
}

function obj(payload: unknown, name: string): Record<string, unknown> {
  if (payload === undefined) return {};
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected an options object, got ${describeValue(payload)}`, {
      argument: name,
    });
  }
  return payload as Record<string, unknown>;
}

function str(v: unknown, name: string, fallback: string, choices: readonly string[]): string {
  const s = v === undefined ? fallback : v;
  if (typeof s !== 'string' || !choices.includes(s)) {
    throw new SbmError('UNKNOWN_NAME', `${name}: expected one of ${choices.join(', ')}, got ${describeValue(s)}`, {
      argument: name,
      expected: [...choices],
      received: s,
    });
  }
  return s;
}

/** Toy sets that need no options (the GMM toy needs its means). */
function usableToys(): string[] {
  return toyNames().filter((n) => {
    try {
      toyArray(n, 1, 0);
      return true;
    } catch {
      return false;
    }
  });
}

/** Samplers of the sampler panel: those taking (sde, score, shape, seed, steps); Langevin has its own panel. */
function panelSamplers(): string[] {
  return listSamplers().filter((n) => {
    if (n === 'ald' || n === 'langevin') return false;
    const keys = samplerEntry(n)?.options;
    return !keys || keys.includes('steps');
  });
}

/** The points of a request: `points` (flat pairs or [x, y] rows, hand-drawn) or a toy set `{ toy, n, seed }`. */
function pointsOf(p: Record<string, unknown>): Float32Array {
  if (p.points !== undefined) {
    const raw = p.points;
    let flat: number[];
    if (raw instanceof Float32Array) flat = Array.from(raw);
    else if (Array.isArray(raw)) flat = raw.flatMap((r) => (Array.isArray(r) ? r : [r])) as number[];
    else {
      throw new SbmError('INVALID_ARGUMENT', `points: expected [x, y] pairs, got ${describeValue(raw)}`, {
        argument: 'points',
      });
    }
    if (flat.length % 2 !== 0 || flat.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
      throw new SbmError('INVALID_ARGUMENT', 'points: expected finite [x, y] pairs', { argument: 'points' });
    }
    // Two points are the least a distribution to learn can be; fewer is what an empty canvas sends.
    if (flat.length < 4) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `points: expected at least 2 hand-drawn points, got ${flat.length / 2} (draw on the data canvas first)`,
        { argument: 'points', expected: 2, received: flat.length / 2 },
      );
    }
    return Float32Array.from(flat);
  }
  const name = str(p.toy, 'toy', 'swiss-roll', usableToys());
  const n = checkNumber(p.n ?? 2000, 'n', { integer: true, min: 2, max: 100_000 });
  const seed = checkNumber(p.seed ?? 0, 'seed', { integer: true, min: 0 });
  return toyArray(name, n, seed);
}

/**
 * Repeats a small set until it has at least `min` rows: the Batcher draws batches without replacement within an
 * epoch, and repeating the rows leaves the empirical distribution unchanged (jitter would change it).
 */
function tileRows(points: Float32Array, min: number): Float32Array {
  const n = points.length / 2;
  if (n >= min) return points;
  const reps = Math.ceil(min / n);
  const out = new Float32Array(reps * points.length);
  for (let r = 0; r < reps; r++) out.set(points, r * points.length);
  return out;
}

/**
 * Largest distance between two training points (all pairs of at most 2,000 evenly spaced ones: the extreme pairs
 * of a toy set or a drawing are not missed by more than its point spacing).
 */
export function maxPairwiseDistance(points: Float32Array): number {
  const n = points.length / 2;
  const stride = Math.max(1, Math.ceil(n / 2000));
  let best = 0;
  for (let i = 0; i < n; i += stride) {
    for (let j = i + stride; j < n; j += stride) {
      const dx = points[2 * i] - points[2 * j];
      const dy = points[2 * i + 1] - points[2 * j + 1];
      best = Math.max(best, dx * dx + dy * dy);
    }
  }
  return Math.sqrt(best);
}

/**
 * The SDE of a run: a registry config as given, or for a bare name the registry's defaults — except VE, whose
 * defaults (σ_max 50) are score_sde's for images. For VE the playground takes σ_max = the largest distance between
 * two training points (Song & Ermon 2020, "Improved techniques", technique 1: the prior then covers the data) and
 * σ_min = 0.01 (score_sde): with geometric σ(t), half the training times then have σ below 0.3, the scale of the
 * swiss roll's arms, where VP (β 0.1–20) spends only a tenth of them — so VE resolves the spiral in a few hundred
 * steps where VP draws a blurred ring (apps/demo/README.md, measured).
 */
function sdeOf(v: unknown, points: Float32Array): Sde {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return createSde(v as { name: string });
  const name = str(v, 'sde', 've', listSdes());
  if (name !== 've') return createSde(name);
  const span = maxPairwiseDistance(points);
  return createSde({ name: 've', sigmaMin: 0.01, sigmaMax: Math.max(2 * 0.01, span) });
}

async function trainHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'train');
  const points = pointsOf(p);
  const sde = sdeOf(p.sde, points);
  const hidden = (p.hidden ?? [128, 128, 128]) as unknown;
  if (!Array.isArray(hidden) || hidden.length < 1 || hidden.length > 8) {
    throw new SbmError('INVALID_ARGUMENT', `hidden: expected 1 to 8 layer widths, got ${describeValue(hidden)}`, {
      argument: 'hidden',
    });
  }
  hidden.forEach((w, i) => checkNumber(w, `hidden[${i}]`, { integer: true, min: 1, max: 1024 }));
  const steps = checkNumber(p.steps ?? 500, 'steps', { integer: true, min: 1, max: 1_000_000 });
  const batchSize = checkNumber(p.batchSize ?? 512, 'batchSize', { integer: true, min: 1, max: 8192 });
  const lr = checkNumber(p.lr ?? 1e-2, 'lr', { gt: 0, max: 1 });
  const seed = checkNumber(p.seed ?? 0, 'seed', { integer: true, min: 0 });
  const progressEvery = checkNumber(p.progressEvery ?? 10, 'progressEvery', { integer: true, min: 1 });

  const mine = ++generation;
  // cond = t with the output divided by the SDE's marginal std (the tutorial's form, as the CLI's quickstart):
  // Fourier features of t resolve the time axis.
  const model = new MlpScoreModel({ name: 'mlp', inputDim: 2, hidden, marginalProbStd: sde.toConfig() }, seed + 1);
  const rows = tileRows(points, 4 * batchSize);
  const data = tf.tensor2d(rows, [rows.length / 2, 2]);
  const t0 = performance.now();
  let firstLoss = NaN;
  let res: Awaited<ReturnType<typeof train>>;
  try {
    res = await train({
      model,
      sde,
      data,
      steps,
      batchSize,
      lr,
      warmup: Math.min(50, Math.max(1, Math.round(steps / 10))),
      ema: { decay: 0.99 },
      seed: seed + 3,
      historyEvery: 1,
      progressEvery,
      signal: ctx.signal,
      onProgress: (r) => {
        if (Number.isNaN(firstLoss)) firstLoss = r.loss;
        const sec = (performance.now() - t0) / 1000;
        ctx.progress({ step: r.step, steps, loss: r.loss, stepsPerSec: r.step / sec });
      },
    });
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    data.dispose();
  }
  const ms = performance.now() - t0;
  // Sample with the averaged weights (score_sde samples from the EMA too).
  res.ema.copyTo(model);
  res.ema.dispose();
  if (mine !== generation) {
    model.dispose();
    throw new SbmError('ABORTED', 'train: superseded by a newer run or a backend switch');
  }
  state?.model.dispose();
  state = { sde, model, score: createScoreFn(model, sde), points };
  const losses = res.losses;
  const tail = losses.slice(-Math.max(1, Math.min(50, losses.length)));
  return {
    step: res.step,
    aborted: res.aborted,
    firstLoss: Number.isNaN(firstLoss) ? (losses[0] ?? NaN) : firstLoss,
    finalLoss: tail.reduce((a, b) => a + b, 0) / tail.length,
    losses: Float32Array.from(losses),
    ms,
    stepsPerSec: res.step / (ms / 1000),
    backend: ctx.backend(),
    // The SDE with the parameters used (VE's σ_max comes from the data), for the page's status line.
    sde: sde.toConfig(),
  };
}

function gridPoints(cells: number): Float32Array {
  const g = new Float32Array(cells * cells * 2);
  for (let i = 0; i < cells; i++) {
    for (let j = 0; j < cells; j++) {
      const k = i * cells + j;
      g[2 * k] = VIEW.min + ((j + 0.5) / cells) * (VIEW.max - VIEW.min);
      g[2 * k + 1] = VIEW.min + ((i + 0.5) / cells) * (VIEW.max - VIEW.min);
    }
  }
  return g;
}

async function fieldHandler(payload: unknown) {
  const p = obj(payload, 'field');
  const s = need();
  const cells = checkNumber(p.cells ?? 21, 'cells', { integer: true, min: 2, max: 100 });
  const t = checkNumber(p.t ?? 0.05, 't', { gt: 0, max: s.sde.T });
  const grid = gridPoints(cells);
  const out = tf.tidy(() => s.score(tf.tensor2d(grid, [cells * cells, 2]), tf.fill([cells * cells], t) as tf.Tensor1D));
  try {
    return { t, cells, grid, vectors: (await out.data()) as Float32Array };
  } finally {
    out.dispose();
  }
}

function samplingOptions(p: Record<string, unknown>) {
  return {
    n: checkNumber(p.n ?? 1000, 'n', { integer: true, min: 1, max: 50_000 }),
    seed: checkNumber(p.seed ?? 0, 'seed', { integer: true, min: 0 }),
  };
}

async function sampleHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'sample');
  const s = need();
  const sampler = str(p.sampler, 'sampler', 'pc', panelSamplers());
  const steps = checkNumber(p.steps ?? 200, 'steps', { integer: true, min: 1, max: 10_000 });
  const { n, seed } = samplingOptions(p);
  // PC defaults to a Langevin corrector (2 NFE per step); the panel's PC is the reverse-diffusion predictor alone, as
  // the quickstart's, so step counts compare with the other samplers.
  const extra = sampler === 'pc' ? { corrector: 'none' as const } : {};
  const t0 = performance.now();
  const { samples, stats } = await sample({
    sampler: sampler as 'pc',
    ...extra,
    sde: s.sde,
    score: s.score,
    shape: [n, 2],
    seed,
    steps,
    signal: ctx.signal,
    onProgress: (r: { step: number; steps: number }) => ctx.progress({ step: r.step, steps: r.steps }),
  });
  try {
    const points = (await samples.data()) as Float32Array;
    return { sampler, points, nfe: stats.nfe, ms: performance.now() - t0 };
  } finally {
    samples.dispose();
  }
}

/** Evenly spaced frame numbers: every `every`-th step of `steps`. */
const frameEvery = (steps: number, frames: number) => Math.max(1, Math.floor(steps / frames));

async function trajectoriesHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'trajectories');
  const s = need();
  const { sde } = s;
  const n = checkNumber(p.n ?? 300, 'n', { integer: true, min: 1, max: 5000 });
  const steps = checkNumber(p.steps ?? 100, 'steps', { integer: true, min: 2, max: 2000 });
  const frames = checkNumber(p.frames ?? 50, 'frames', { integer: true, min: 2, max: 500 });
  const seed = checkNumber(p.seed ?? 0, 'seed', { integer: true, min: 0 });
  const every = frameEvery(steps, frames);
  const count = { forward: 0, reverse: 0, ode: 0 };
  const send = async (panel: 'forward' | 'reverse' | 'ode', t: number, x: tf.Tensor) => {
    const points = (await x.data()) as Float32Array;
    ctx.progress({ panel, frame: count[panel]++, t, points: Float32Array.from(points) });
  };

  // Forward SDE by Euler–Maruyama from data at eps to T: dx = f dt + g dW (Song et al. 2021, eq. 5).
  const m = s.points.length / 2;
  const pick = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const k = Math.floor((i * m) / n);
    pick[2 * i] = s.points[2 * k];
    pick[2 * i + 1] = s.points[2 * k + 1];
  }
  let x: tf.Tensor = tf.tensor2d(pick, [n, 2]);
  const eps = sde.samplingEps;
  const dt = (sde.T - eps) / steps;
  try {
    await send('forward', eps, x);
    for (let i = 0; i < steps; i++) {
      if (ctx.signal.aborted) throw new SbmError('ABORTED', 'trajectories: cancelled');
      const t = eps + i * dt;
      const next = tf.tidy(() => {
        const { drift, diffusion } = sde.sde(x, tf.fill([n], t) as tf.Tensor1D);
        const z = tf.randomNormal([n, 2], 0, 1, 'float32', seed * 7919 + i);
        return tf.add(tf.add(x, tf.mul(drift, dt)), tf.mul(tf.reshape(diffusion, [-1, 1]), tf.mul(z, Math.sqrt(dt))));
      });
      x.dispose();
      x = next;
      if ((i + 1) % every === 0 || i === steps - 1) await send('forward', t + dt, x);
    }
  } finally {
    x.dispose();
  }

  // Reverse SDE (Euler–Maruyama) and probability-flow ODE (Heun) from the same prior draw.
  const init = sde.priorSampling([n, 2], seed + 1);
  try {
    await send('reverse', sde.T, init);
    await send('ode', sde.T, init);
    const common = { sde, score: s.score, shape: [n, 2], init, steps, trajectoryEvery: every, signal: ctx.signal };
    const rev = await sample({
      ...common,
      sampler: 'em',
      seed: seed + 2,
      onTrajectory: ({ t, x: xt }: { t: number; x: tf.Tensor }) => send('reverse', t, xt),
    });
    rev.samples.dispose();
    const ode = await sample({
      ...common,
      sampler: 'ode',
      method: 'heun',
      seed: seed + 3,
      onTrajectory: ({ t, x: xt }: { t: number; x: tf.Tensor }) => send('ode', t, xt),
    });
    ode.samples.dispose();
  } finally {
    init.dispose();
  }
  return { ...count };
}

async function langevinHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'langevin');
  const s = need();
  const { n, seed } = samplingOptions({ n: 500, ...p });
  const steps = checkNumber(p.steps ?? 200, 'steps', { integer: true, min: 1, max: 10_000 });
  const sigma = checkNumber(p.sigma ?? 0.1, 'sigma', { gt: 0, max: 10 });
  // ε = 2 (snr σ)²: at snr 0.5 and σ = 0.1 that is 5e-3, so 200 steps integrate Langevin time 1 — enough for points
  // from anywhere in the view to reach the data (at score_sde's corrector snr 0.16 they would barely move).
  const snr = checkNumber(p.snr ?? 0.5, 'snr', { gt: 0, max: 10 });
  const frames = checkNumber(p.frames ?? 40, 'frames', { integer: true, min: 1, max: 500 });
  // Start uniform over the view, as the particle figure of Song & Ermon's blog post: the chains then visibly flow
  // into the data's modes.
  const init = tf.tidy(() => tf.randomUniform([n, 2], VIEW.min, VIEW.max, 'float32', seed));
  let frame = 0;
  try {
    ctx.progress({ frame: frame++, step: 0, points: (await init.data()) as Float32Array });
    const { samples, stats } = await sample({
      sampler: 'langevin',
      sde: s.sde,
      score: s.score,
      sigma,
      snr,
      steps,
      shape: [n, 2],
      init,
      seed: seed + 1,
      trajectoryEvery: frameEvery(steps, frames),
      signal: ctx.signal,
      onTrajectory: async ({ step, x }: { step: number; x: tf.Tensor }) =>
        ctx.progress({ frame: frame++, step, points: Float32Array.from((await x.data()) as Float32Array) }),
    });
    try {
      return { points: (await samples.data()) as Float32Array, nfe: stats.nfe, frames: frame };
    } finally {
      samples.dispose();
    }
  } finally {
    init.dispose();
  }
}

async function densityHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'density');
  const s = need();
  const cells = checkNumber(p.cells ?? 40, 'cells', { integer: true, min: 2, max: 200 });
  const grid = tf.tensor2d(gridPoints(cells), [cells * cells, 2]);
  try {
    // The exact divergence: in 2-D it costs two backward passes per step and has no Hutchinson noise.
    const r = await logLikelihood(s.score, grid, s.sde, 0, { divergence: 'exact', signal: ctx.signal });
    return { cells, logp: Float32Array.from(r.nll, (v) => -v), nfe: r.nfe };
  } finally {
    grid.dispose();
  }
}

async function optionsHandler() {
  return { sdes: listSdes(), samplers: panelSamplers(), toys: usableToys() };
}

async function dataHandler(payload: unknown) {
  const points = pointsOf(obj(payload, 'data'));
  return { points, n: points.length / 2 };
}

export const playgroundHandlers: Record<string, Handler> = {
  'pg:options': optionsHandler,
  'pg:data': dataHandler,
  'pg:train': trainHandler,
  'pg:field': fieldHandler,
  'pg:sample': sampleHandler,
  'pg:trajectories': trajectoriesHandler,
  'pg:langevin': langevinHandler,
  'pg:density': densityHandler,
};
