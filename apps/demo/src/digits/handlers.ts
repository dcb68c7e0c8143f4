import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, describeValue } from '@sbm/core';
import { loadSbmModel, type SbmModelInfo } from '@sbm/interop';
import {
  conditionalSample,
  filteredBackProjection,
  maskOperator,
  radonOperator,
  type LinearOperator,
} from '@sbm/inverse-problems';
import { loadNoisyClassifier, type NoisyMnistClassifier } from '@sbm/mnist-eval';
import { createScoreFn, type ScoreModel } from '@sbm/models';
import { listSamplers, sample, samplerEntry } from '@sbm/samplers';
import { createSde, type ScoreFn, type Sde } from '@sbm/sde';
import type { Handler, HandlerContext } from '../protocol';

/*
 * The Digits panel's compute: the shipped MNIST score model (an sbm model file, @sbm/interop's loadSbmModel) and the
 * noise-conditional classifier, fetched from the site's own files, and what is drawn from them — unconditional
 * samples, inpainting under a painted mask, class guidance, sparse-view CT. Every read is an awaited data() after the
 * sampler returns (no readbacks in the loops); every request takes a seed.
 */

/** Image side and the pixel count of one digit. */
const SIZE = 28;
const PIXELS = SIZE * SIZE;
/** The panel's default: DPM-Solver++(3M) SDE, 19 steps + the Tweedie step to zero = 20 NFE (BENCHMARKS.md, "time64"). */
export const DEFAULT_SAMPLER = 'dpmpp-3m-sde';
export const DEFAULT_STEPS = 19;
/** The inverse-problem carrier of BENCHMARKS.md's MNIST runs: DPM-Solver++(3M) SDE, 30 steps. */
const CARRIER = 'dpmpp-3m-sde';
/** Views beyond this make the CT pseudo-inverse (a float64 eigen-decomposition in JS) take tens of seconds. */
export const MAX_VIEWS = 16;

interface Model {
  /**
   * The backend instance the weights were uploaded to (compared by identity: a backend re-created under the same name
   * no longer holds them); on a switch they are rebuilt from `bytes`.
   */
  backend: tf.KernelBackend;
  url: string;
  bytes: Uint8Array;
  model: ScoreModel;
  sde: Sde;
  score: ScoreFn;
  info: SbmModelInfo;
}

interface Classifier {
  backend: tf.KernelBackend;
  url: string;
  bytes: Uint8Array;
  clf: NoisyMnistClassifier;
}

let model: Model | undefined;
let classifier: Classifier | undefined;
/** The last CT operator (its pseudo-inverse is the expensive part), reused while views and backend stay the same. */
let ct: { backend: tf.KernelBackend; views: number; op: LinearOperator } | undefined;

function obj(payload: unknown, name: string): Record<string, unknown> {
  if (payload === undefined) return {};
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected an options object, got ${describeValue(payload)}`, {
      argument: name,
    });
  }
  return payload as Record<string, unknown>;
}

function url(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.length === 0) {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected the file's URL, got ${describeValue(v)}`, {
      argument: name,
    });
  }
  return v;
}

/** 784 values from a plain array or typed array, each finite and (for a mask) exactly 0 or 1. */
function pixels(v: unknown, name: string, kind: 'image' | 'mask'): Float32Array {
  const ok = (Array.isArray(v) || ArrayBuffer.isView(v)) && (v as ArrayLike<number>).length === PIXELS;
  if (!ok) {
    const got =
      Array.isArray(v) || ArrayBuffer.isView(v) ? `${(v as ArrayLike<number>).length} values` : describeValue(v);
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected ${PIXELS} values (28×28, row-major), got ${got}`, {
      argument: name,
    });
  }
  const out = Float32Array.from(v as ArrayLike<number>);
  for (let i = 0; i < PIXELS; i++) {
    const x = out[i];
    const bad = kind === 'mask' ? x !== 0 && x !== 1 : !Number.isFinite(x) || x < 0 || x > 1;
    if (bad) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `${name}[${i}]: expected ${kind === 'mask' ? '0 (unknown) or 1 (known)' : 'a value in [0, 1]'}, got ${x}`,
        { argument: name },
      );
    }
  }
  return out;
}

/** Fetches one of the site's files, reporting bytes as they arrive. */
async function fetchBytes(href: string, what: string, ctx: HandlerContext): Promise<Uint8Array> {
  const res = await fetch(href, { signal: ctx.signal });
  if (!res.ok) {
    throw new SbmError('FILE_NOT_FOUND', `${what}: ${href} answered ${res.status} ${res.statusText}`, { url: href });
  }
  const total = Number(res.headers.get('content-length')) || 0;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    ctx.progress({ phase: 'download', what, loaded, total });
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Frees tensors that may belong to a backend that is gone (then there is nothing left to free). */
function release(fn: () => void): void {
  try {
    fn();
  } catch {
    // the old backend was removed with its memory
  }
}

function build(bytes: Uint8Array, href: string, backend: tf.KernelBackend): Model {
  const { model: m, sde: sdeConfig, metadata } = loadSbmModel(bytes);
  const sde = createSde(sdeConfig);
  return { backend, url: href, bytes, model: m, sde, score: createScoreFn(m, sde), info: metadata };
}

/** The model, rebuilt on the current backend when the backend changed since it was loaded. */
function needModel(_ctx: HandlerContext): Model {
  if (!model) {
    throw new SbmError('INVALID_ARGUMENT', 'model: expected the digits model to be loaded (digits:load), got none', {
      argument: 'model',
    });
  }
  if (model.backend !== tf.backend()) {
    const { bytes, url: href } = model;
    const old = model.model;
    release(() => old.dispose());
    model = build(bytes, href, tf.backend());
  }
  return model;
}

function needClassifier(_ctx: HandlerContext): NoisyMnistClassifier {
  if (!classifier) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      'classifier: expected the noise-conditional classifier to be loaded (digits:load with classifierUrl), got none',
      { argument: 'classifier' },
    );
  }
  if (classifier.backend !== tf.backend()) {
    const old = classifier.clf;
    release(() => old.dispose());
    classifier = { ...classifier, backend: tf.backend(), clf: loadNoisyClassifier(classifier.bytes) };
  }
  return classifier.clf;
}

function summary(m: Model) {
  return {
    url: m.url,
    bytes: m.bytes.length,
    model: m.info.model.name,
    params: m.model.countParams({ includeFixed: true }),
    sde: m.info.sde,
    dataRange: m.info.dataRange,
    step: m.info.step,
    weights: m.info.weights,
    dtype: m.info.dtype,
  };
}

async function loadHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'load');
  const modelUrl = url(p.modelUrl, 'modelUrl');
  const t0 = performance.now();
  if (!model || model.url !== modelUrl) {
    const bytes = await fetchBytes(modelUrl, 'model', ctx);
    ctx.progress({ phase: 'build', what: 'model' });
    const next = build(bytes, modelUrl, tf.backend());
    const old = model?.model;
    release(() => old?.dispose());
    model = next;
  } else {
    needModel(ctx);
  }
  if (p.classifierUrl !== undefined) {
    const clfUrl = url(p.classifierUrl, 'classifierUrl');
    if (!classifier || classifier.url !== clfUrl) {
      const bytes = await fetchBytes(clfUrl, 'classifier', ctx);
      // Its default SDE is the tutorial VE with σ = 25: the shipped model's (checked by the panel's caption).
      const clf = loadNoisyClassifier(bytes);
      const old = classifier?.clf;
      release(() => old?.dispose());
      classifier = { backend: tf.backend(), url: clfUrl, bytes, clf };
    } else {
      needClassifier(ctx);
    }
  }
  return {
    ...summary(model),
    classifier: classifier !== undefined,
    ms: performance.now() - t0,
    backend: ctx.backend(),
  };
}

/** Samplers the panel offers: registered ones with a step count (not the σ-ladder Langevin ones). */
export function digitSamplers(): string[] {
  return listSamplers().filter((n) => {
    if (n === 'ald' || n === 'langevin') return false;
    const keys = samplerEntry(n)?.options;
    return !keys || keys.includes('steps');
  });
}

async function optionsHandler() {
  return {
    samplers: digitSamplers(),
    defaultSampler: DEFAULT_SAMPLER,
    defaultSteps: DEFAULT_STEPS,
    maxViews: MAX_VIEWS,
  };
}

function common(p: Record<string, unknown>, defaults: { n: number; steps: number }) {
  return {
    n: checkNumber(p.n ?? defaults.n, 'n', { integer: true, min: 1, max: 64 }),
    steps: checkNumber(p.steps ?? defaults.steps, 'steps', { integer: true, min: 1, max: 2000 }),
    seed: checkNumber(p.seed ?? 0, 'seed', { integer: true, min: 0 }),
  };
}

const progressOf = (ctx: HandlerContext) => (r: { step: number; steps: number; nfe: number }) =>
  ctx.progress({ phase: 'sample', step: r.step, steps: r.steps, nfe: r.nfe });

/** What every draw of `n` digits passes its sampler: the model, the batch shape, the seed, cancel and progress. */
const drawing = (m: Model, n: number, seed: number, ctx: HandlerContext) => ({
  sde: m.sde,
  score: m.score,
  shape: [n, SIZE, SIZE, 1],
  seed,
  signal: ctx.signal,
  onProgress: progressOf(ctx),
});

async function sampleHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'sample');
  const m = needModel(ctx);
  const samplers = digitSamplers();
  const sampler = p.sampler ?? DEFAULT_SAMPLER;
  if (typeof sampler !== 'string' || !samplers.includes(sampler)) {
    throw new SbmError(
      'UNKNOWN_NAME',
      `sampler: expected one of ${samplers.join(', ')}, got ${describeValue(sampler)}`,
      {
        argument: 'sampler',
      },
    );
  }
  const { n, steps, seed } = common(p, { n: 16, steps: DEFAULT_STEPS });
  const keys = samplerEntry(sampler)?.options;
  // The Tweedie step to t = 0 where the sampler has it (the few-step solvers); PC without a corrector, so that steps
  // compare with the other samplers (1 NFE each).
  const extra: Record<string, unknown> = {};
  if (keys?.includes('denoiseToZero')) extra.denoiseToZero = true;
  if (sampler === 'pc') extra.corrector = 'none';
  const t0 = performance.now();
  const r = await sample({
    sampler: sampler as 'pc',
    ...extra,
    ...drawing(m, n, seed, ctx),
    steps,
  });
  return samplesReply(r, t0, ctx, { sampler, steps });
}

async function inpaintHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'inpaint');
  const m = needModel(ctx);
  const image = pixels(p.image, 'image', 'image');
  const mask = pixels(p.mask, 'mask', 'mask');
  const method = p.method ?? 'projection';
  if (method !== 'projection' && method !== 'repaint') {
    throw new SbmError('UNKNOWN_NAME', `method: expected projection or repaint, got ${describeValue(method)}`, {
      argument: 'method',
    });
  }
  const { n, steps, seed } = common(p, { n: 4, steps: method === 'repaint' ? 20 : 30 });
  const t0 = performance.now();
  // maskOperator copies the mask it is given.
  const maskT = tf.tensor3d(mask, [SIZE, SIZE, 1]);
  let op: LinearOperator;
  try {
    op = maskOperator({ mask: maskT });
  } finally {
    maskT.dispose();
  }
  const x = tf.tidy(() => tf.tile(tf.tensor4d(image, [1, SIZE, SIZE, 1]), [n, 1, 1, 1]));
  const y = op.forward(x);
  try {
    // RePaint at BENCHMARKS.md's MNIST budget (20 steps, jump 5, 3 resamplings: 50 NFE); projection on the carrier.
    const settings =
      method === 'repaint'
        ? { jumpLength: 5, resamplings: 3, samplerOptions: { steps } }
        : { sampler: CARRIER, samplerOptions: { steps } };
    const r = await conditionalSample({
      method,
      ...settings,
      ...drawing(m, n, seed, ctx),
      operator: op,
      y,
      noiseStd: 0,
    });
    return await samplesReply(r, t0, ctx, { method, residual: r.residual });
  } finally {
    tf.dispose([x, y]);
    op.dispose?.();
  }
}

async function guidedHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'guided');
  const m = needModel(ctx);
  const clf = needClassifier(ctx);
  const label = checkNumber(p.label ?? 0, 'label', { integer: true, min: 0, max: 9 });
  const scale = checkNumber(p.scale ?? 4, 'scale', { min: 0, max: 50 });
  const { n, steps, seed } = common(p, { n: 8, steps: 30 });
  const t0 = performance.now();
  const r = await conditionalSample({
    method: 'guidance',
    ...drawing(m, n, seed, ctx),
    classifier: clf.logits,
    label,
    scale,
    sampler: CARRIER,
    samplerOptions: { steps },
  });
  return samplesReply(r, t0, ctx, { label, scale });
}

async function ctOperator(views: number, ctx: HandlerContext): Promise<LinearOperator> {
  if (ct && ct.views === views && ct.backend === tf.backend()) return ct.op;
  const old = ct?.op;
  release(() => old?.dispose?.());
  ct = undefined;
  ctx.progress({ phase: 'operator', views });
  const op = await radonOperator({ size: SIZE, views });
  ct = { backend: tf.backend(), views, op };
  return op;
}

async function ctHandler(payload: unknown, ctx: HandlerContext) {
  const p = obj(payload, 'ct');
  const m = needModel(ctx);
  const image = pixels(p.image, 'image', 'image');
  const views = checkNumber(p.views ?? 8, 'views', { integer: true, min: 1, max: MAX_VIEWS });
  const { n, steps, seed } = common(p, { n: 1, steps: 30 });
  const t0 = performance.now();
  const op = await ctOperator(views, ctx);
  const x = tf.tidy(() => tf.tile(tf.tensor4d(image, [1, SIZE, SIZE, 1]), [n, 1, 1, 1]));
  const y = op.forward(x);
  const fbp = filteredBackProjection(op, y);
  try {
    // cs.py's λ-projection on the carrier, with the method's defaults (λ = 1, final hard merge).
    const r = await conditionalSample({
      method: 'lambda-projection',
      ...drawing(m, n, seed, ctx),
      operator: op,
      y,
      noiseStd: 0,
      sampler: CARRIER,
      samplerOptions: { steps },
    });
    // The sinogram and the FBP image are read alongside the samples (one round of readbacks).
    const fields = Promise.all([y.data(), fbp.data()]).then(([sinogram, fbpValues]) => ({
      sinogram: sinogram as Float32Array,
      sinogramShape: y.shape.slice(1),
      fbp: fbpValues as Float32Array,
      views,
      residual: r.residual,
    }));
    return await samplesReply(r, t0, ctx, fields);
  } finally {
    tf.dispose([x, y, fbp]);
  }
}

/**
 * The reply every drawing handler sends: the samples read back (one awaited data(), after the sampler returned) with
 * their shape, then the handler's own fields, the NFE, the time since `t0` and the backend; the samples are disposed
 * of whether or not the read succeeds. `fields` may be a pending read, awaited alongside the samples'.
 */
async function samplesReply<F extends object>(
  r: { samples: tf.Tensor; stats: { nfe: number } },
  t0: number,
  ctx: HandlerContext,
  fields: F | Promise<F>,
) {
  try {
    const [values, own] = await Promise.all([r.samples.data(), fields]);
    return {
      shape: r.samples.shape,
      values: values as Float32Array,
      ...own,
      nfe: r.stats.nfe,
      ms: performance.now() - t0,
      backend: ctx.backend(),
    };
  } finally {
    r.samples.dispose();
  }
}

export const digitsHandlers: Record<string, Handler> = {
  'digits:load': loadHandler,
  'digits:options': optionsHandler,
  'digits:sample': sampleHandler,
  'digits:inpaint': inpaintHandler,
  'digits:guided': guidedHandler,
  'digits:ct': ctHandler,
};
