import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { isSbmError, randomNormal, seedStream } from '@sbm/core';
import {
  baselinesFor,
  conditionalSample,
  createOperator,
  filteredBackProjection,
  getMethod,
  MASK_NAMES,
  measurementResidual,
  namedMask,
  runBaseline,
  zeroFilledInverse,
  type ConditionalResult,
  type LinearOperator,
  type MethodDefinition,
} from '@sbm/inverse-problems';
import type { SampleProgress } from '@sbm/samplers';
import { psnrPerImage, ssimPerImage } from '@sbm/metrics';
import { createSde, type Sde } from '@sbm/sde';
import { loadCheckpoint, type CheckpointConfig } from '@sbm/training';
import {
  convertChannels,
  decodePngFile,
  encodeGridPng,
  gridFromArray,
  loadColoredMnist,
  loadMnist,
  squareImage,
} from '@sbm/datasets/node';
import { startBackend } from '../backend';
import { EXIT_INTERRUPTED, UsageError } from '../errors';
import { FractionProgress } from '../progress';
import { readRunFile, requireCheckpoint, storage } from '../run-file';
import { GracefulStop } from '../signals';
import { mean, writeFileAtomic, writeJsonAtomic } from '../util';
import { checkpointScoreFn } from './import';
import { INVERSE_TASKS, SETTING_FLAGS, type InverseTask } from './inverse-tasks';

/** Test-set sizes: an index past them is a flag error, found before anything loads. */
const TEST_SET_SIZE = 10_000;

/** Option keys of the library in the words of the flags that set them (errors name what the user typed). */
const FLAGS: Record<string, string> = {
  ...SETTING_FLAGS,
  steps: '--steps',
  N: '--steps',
  snr: '--snr',
  eps: '--eps',
  denoiseToZero: '--denoise-to-zero',
  sampler: '--sampler',
  noiseStd: '--noise-std',
  mask: '--mask',
  ratio: '--ratio',
  factor: '--factor',
  views: '--views',
  acceleration: '--acceleration',
  centerFraction: '--center-fraction',
  label: '--label',
  scale: '--scale',
};

export interface CommonCliOptions {
  ckpt: string;
  sampler?: string;
  steps?: number;
  snr?: number;
  eps?: number;
  /** End the carrier with Tweedie's denoiser (samplerOptions.denoiseToZero). */
  denoiseToZero?: boolean;
  samplerOptions?: Record<string, unknown>;
  seed: number;
  ema: boolean;
  out: string;
  /** true: JSON on stdout; a string: the file to write it to. */
  json?: string | boolean;
  backend?: string;
}

export interface InverseCliOptions extends CommonCliOptions {
  indices?: number[];
  n?: number;
  images?: string[];
  mask?: string;
  ratio?: number;
  factor?: number;
  views?: number;
  acceleration?: number;
  centerFraction?: number;
  operatorSeed?: number;
  noiseStd?: number;
  method?: string;
  lambda?: number;
  zeta?: number;
  semantics?: string;
  jumpLength?: number;
  resamplings?: number;
  samplesPerInput: number;
  /** Score the mean of each input's K reconstructions too (K ≥ 2). */
  posteriorMean?: boolean;
}

export interface GuidedCliOptions extends CommonCliOptions {
  label: number;
  scale: number;
  classifier?: string;
  n: number;
}

/** Rewords an SbmError about a library option ("views: expected ...", or details.argument) as the flag's. */
function reword(e: unknown): unknown {
  if (!isSbmError(e) || !['INVALID_ARGUMENT', 'UNKNOWN_NAME', 'INVALID_SHAPE'].includes(e.code)) return e;
  const first = e.message.split('\n')[0];
  const arg = typeof e.details?.argument === 'string' ? e.details.argument : undefined;
  const inSampler =
    (arg ? /^samplerOptions\.(\w+)$/.exec(arg) : null) ?? /^(?:[\w-]+: )?samplerOptions\.(\w+): /.exec(first);
  if (inSampler) {
    // Set by its own flag (--steps, --snr, --eps) or inside --sampler-options.
    const flag = fromFlags.has(inSampler[1]) ? FLAGS[inSampler[1]] : '--sampler-options';
    return new UsageError(`${flag}: ${first.replace(/^(?:[\w-]+: )?samplerOptions\.\w+: /, '')} [${e.code}]`);
  }
  if (arg && Object.prototype.hasOwnProperty.call(FLAGS, arg)) {
    const rest = first.replace(new RegExp(`^(?:[\\w-]+: )?${arg}: `), '');
    return new UsageError(`${FLAGS[arg]}: ${rest} [${e.code}]`);
  }
  const m = /^(?:[\w-]+: )?([A-Za-z]\w*): ([\s\S]*)$/.exec(first);
  if (m && Object.prototype.hasOwnProperty.call(FLAGS, m[1]))
    return new UsageError(`${FLAGS[m[1]]}: ${m[2]} [${e.code}]`);
  return e;
}

async function flagWords<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw reword(e);
  }
}

function checkOutputs(o: CommonCliOptions): void {
  if (!o.out.toLowerCase().endsWith('.png')) throw new UsageError(`--out: expected a .png file, got "${o.out}"`);
  if (typeof o.json === 'string' && o.json === o.out) {
    throw new UsageError(`--json: expected a file other than --out, got "${o.json}" for both`);
  }
}

/** The settings the flags gave, as the method's option keys. */
function methodSettings(o: InverseCliOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(SETTING_FLAGS) as (keyof typeof SETTING_FLAGS)[]) {
    if (o[key] !== undefined) out[key] = o[key];
  }
  return out;
}

/** Sampler flags that apply to `def`, checked against what it rides on. */
function checkSampler(method: string, def: MethodDefinition, sampler: string | undefined): void {
  if (sampler === undefined) return;
  if (Array.isArray(def.samplers) && !def.samplers.includes(sampler)) {
    throw new UsageError(`--sampler: method ${method} runs on ${def.samplers.join(', ')}, not ${sampler}`);
  }
  // The afterStep methods need a fixed grid: the adaptive solvers choose their own steps and refuse the hook.
  if (def.samplers === 'fixed-step' && (sampler === 'ode' || sampler === 'dpm-adaptive')) {
    throw new UsageError(`--sampler: method ${method} needs a fixed-step sampler, not the adaptive ${sampler}`);
  }
}

/**
 * Everything that can be checked from the flags alone, before any file is read or the backend starts: output
 * names, one input source, indices in range, mask names, and that the method takes the settings given.
 */
export function validateInverseFlags(task: InverseTask, o: InverseCliOptions): { method: string } {
  checkOutputs(o);
  const given = (['indices', 'n', 'images'] as const).filter((k) => o[k] !== undefined);
  if (given.length > 1) {
    throw new UsageError(`--${given[0]} and --${given[1]}: expected one input source (--indices, --n or --images)`);
  }
  for (const i of o.indices ?? []) {
    if (i >= TEST_SET_SIZE) {
      throw new UsageError(`--indices: expected indices below ${TEST_SET_SIZE} (the test-set size), got ${i}`);
    }
  }
  if (o.n !== undefined && o.n > TEST_SET_SIZE) {
    throw new UsageError(`--n: expected at most ${TEST_SET_SIZE} (the test-set size), got ${o.n}`);
  }
  if (task === 'inpaint') {
    const mask = o.mask ?? 'center-box';
    if (!mask.toLowerCase().endsWith('.png') && !(MASK_NAMES as readonly string[]).includes(mask)) {
      throw new UsageError(`--mask: expected one of ${MASK_NAMES.join(', ')} or a .png file, got "${mask}"`);
    }
    if (o.ratio !== undefined && mask !== 'random') {
      throw new UsageError(`--ratio: only with --mask random, not --mask ${mask}`);
    }
  }
  if (task === 'cs' && o.ratio === 0) throw new UsageError('--ratio: expected a number in (0, 1], got "0"');
  if (o.posteriorMean && o.samplesPerInput < 2) {
    throw new UsageError(
      `--posterior-mean: expected --samples-per-input of at least 2 (reconstructions to average), got ${o.samplesPerInput}`,
    );
  }
  const method = o.method ?? INVERSE_TASKS[task].method;
  const def = getMethod(method);
  if (!def.needsMeasurement) throw new UsageError(`--method: ${method} takes no measurement (see sbm guided)`);
  for (const [key, value] of Object.entries(methodSettings(o))) {
    if (value !== undefined && !def.keys.includes(key)) {
      const flag = SETTING_FLAGS[key as keyof typeof SETTING_FLAGS];
      throw new UsageError(`${flag}: method ${method} has no ${key} setting`);
    }
  }
  checkSampler(method, def, o.sampler);
  return { method };
}

/** The image shape [H, W, C] of the checkpoint in `dir`, read from its config without starting a backend. */
async function peekSampleShape(dir: string): Promise<number[] | undefined> {
  const pointer = await requireCheckpoint(dir);
  try {
    const cfg = JSON.parse(await fsp.readFile(join(dir, pointer.slot, 'config.json'), 'utf8')) as CheckpointConfig;
    const s = cfg.data?.sampleShape;
    return Array.isArray(s) ? s : undefined;
  } catch {
    // A damaged config: loadCheckpoint says what is wrong (or falls back to the other slot) once the backend runs.
    return undefined;
  }
}

/** The checks that need the model's image shape (superres' factor, CT's square images, colorize's RGB). */
export function validateForShape(task: InverseTask, o: InverseCliOptions, shape: readonly number[]): void {
  if (shape.length !== 3) {
    throw new UsageError(
      `--ckpt: ${task} needs an image model [H, W, C], the checkpoint's samples are [${shape.join(', ')}]`,
    );
  }
  const [h, w, c] = shape;
  if (task === 'superres') {
    const k = o.factor ?? 4;
    if (h % k !== 0 || w % k !== 0) {
      const divisors = Array.from({ length: Math.min(h, w) - 1 }, (_, i) => i + 2).filter(
        (d) => h % d === 0 && w % d === 0,
      );
      throw new UsageError(
        `--factor: expected a divisor of the image size ${h}×${w} (${divisors.join(', ') || 'none'}), got ${k}`,
      );
    }
  }
  if (task === 'colorize' && c !== 3) {
    throw new UsageError(
      `--ckpt: colorize needs an RGB model (3 channels), the checkpoint's images are [${shape.join(', ')}]`,
    );
  }
  if ((task === 'ct' || task === 'mri') && h !== w) {
    throw new UsageError(`--ckpt: ${task} needs square images, the checkpoint's are ${h}×${w}`);
  }
  if (o.images === undefined && testSetFor(shape) === undefined) {
    throw new UsageError(
      `--${o.indices ? 'indices' : 'n'}: the test sets are MNIST's [28, 28, 1] and colored-mnist's [28, 28, 3] images, the checkpoint's are [${shape.join(', ')}]: pass --images`,
    );
  }
}

/** The test set whose images have the model's shape: MNIST for gray 28×28 models, coloured MNIST for RGB ones. */
export function testSetFor(shape: readonly number[]): 'mnist:test' | 'colored-mnist:test' | undefined {
  const s = shape.join();
  return s === '28,28,1' ? 'mnist:test' : s === '28,28,3' ? 'colored-mnist:test' : undefined;
}

/** A PNG as [H, W, C] in `range`, resized to the model's side. */
async function readPng(flag: string, file: string, size: number, channels: 1 | 3, range: [number, number]) {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fsp.readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${flag}: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code})`);
  }
  const img = decodePngFile(bytes, file);
  return squareImage(convertChannels(img, channels), img.width, img.height, channels, { size, range });
}

interface Inputs {
  x: tf.Tensor4D;
  /** The test set the indices refer to (undefined for --images). */
  data?: string;
  /** What each row is, for the JSON: a test-set index or a file. */
  ids: ({ index: number } | { file: string })[];
}

async function loadInputs(o: InverseCliOptions, shape: number[], range: [number, number]): Promise<Inputs> {
  const [size, , c] = shape;
  if (o.images) {
    const imgs: tf.Tensor3D[] = [];
    try {
      for (const f of o.images) imgs.push(await readPng('--images', f, size, c as 1 | 3, range));
      return { x: tf.stack(imgs) as tf.Tensor4D, ids: o.images.map((file) => ({ file })) };
    } finally {
      tf.dispose(imgs);
    }
  }
  const indices = o.indices ?? Array.from({ length: o.n ?? 4 }, (_, i) => i);
  const limit = Math.max(...indices) + 1;
  let images: tf.Tensor4D;
  let data: string = testSetFor(shape)!;
  if (data === 'colored-mnist:test') {
    // The coloured-digits test set of @sbm/datasets (colour seed 0: the fixed set sbm train --data colored-mnist uses),
    // in the colour rule the model was trained on: the class palette for `--data colored-mnist-class` runs.
    const run = await readRunFile(o.ckpt);
    const palette = run?.data.startsWith('colored-mnist-class') ? 'class' : 'random';
    if (palette === 'class') data = 'colored-mnist-class:test';
    const d = await loadColoredMnist({ split: 'test', range, n: limit, seed: 0, palette });
    tf.dispose([d.labels, d.foreground, d.background]);
    images = d.images;
  } else {
    const d = await loadMnist({ split: 'test', range, limit });
    d.labels.dispose();
    images = d.images;
  }
  try {
    return { x: tf.gather(images, indices) as tf.Tensor4D, data, ids: indices.map((index) => ({ index })) };
  } finally {
    images.dispose();
  }
}

/** The mask of `sbm inpaint`: a named one, or a PNG (≥ 50% gray = known), as [H, W, C] of 0/1. */
async function buildMask(o: InverseCliOptions, shape: number[]): Promise<tf.Tensor> {
  const [h, w, c] = shape;
  const mask = o.mask ?? 'center-box';
  if (mask.toLowerCase().endsWith('.png')) {
    const gray = await readPng('--mask', mask, h, 1, [0, 1]);
    const m = tf.tidy(() => tf.tile(tf.cast(tf.greaterEqual(gray, 0.5), 'float32'), [1, 1, c]));
    gray.dispose();
    return m;
  }
  return flagWords(async () =>
    namedMask(mask, {
      height: h,
      width: w,
      channels: c,
      ...(o.ratio !== undefined ? { ratio: o.ratio } : {}),
      seed: o.operatorSeed ?? 0,
    }),
  );
}

/** The registered operator of `task` with the flags' options. */
async function buildOperator(task: InverseTask, o: InverseCliOptions, shape: number[]): Promise<LinearOperator> {
  const [h, w] = shape;
  const name = INVERSE_TASKS[task].operator;
  let opts: Record<string, unknown>;
  let held: tf.Tensor | undefined;
  switch (task) {
    case 'inpaint':
      held = await buildMask(o, shape);
      opts = { mask: held };
      break;
    case 'colorize':
      opts = { height: h, width: w };
      break;
    case 'superres':
      opts = { inShape: shape, factor: o.factor ?? 4 };
      break;
    case 'cs':
      opts = { inShape: shape, ratio: o.ratio ?? 0.25, seed: o.operatorSeed ?? 0 };
      break;
    case 'ct':
      opts = { size: h, views: o.views ?? 23 };
      break;
    case 'mri':
      opts = {
        height: h,
        width: w,
        acceleration: o.acceleration ?? 4,
        ...(o.centerFraction !== undefined ? { centerFraction: o.centerFraction } : {}),
        seed: o.operatorSeed ?? 0,
      };
      break;
  }
  try {
    return await flagWords(() => createOperator(name, opts));
  } finally {
    held?.dispose();
  }
}

/** The measurement as an image: FBP for CT, the zero-filled inverse for MRI, A⁺ y (min-norm) otherwise (the
 * masked image for inpainting). */
async function measurementImage(
  task: InverseTask,
  op: LinearOperator,
  y: tf.Tensor,
  range: [number, number],
): Promise<tf.Tensor> {
  // Missing pixels drawn mid-gray: at 0 they would look like MNIST's black background, i.e. known.
  const mask = op.decoupled?.mask;
  if (task === 'inpaint' && mask) {
    return tf.tidy(() => tf.add(op.adjoint(y), tf.mul(tf.sub(1, mask), (range[0] + range[1]) / 2)));
  }
  if (task === 'ct') return filteredBackProjection(op, y);
  if (task === 'mri') return zeroFilledInverse(op, y);
  // Every built-in operator has A⁺; Aᵀ y is the fallback for a plugin's that has none.
  return op.pinv ? op.pinv(y) : op.adjoint(y);
}

/** Maps [lo, hi] data onto [0, 1] (clipped): PSNR and SSIM are reported on that scale, R = 1. */
async function unitImages(x: tf.Tensor, range: [number, number]): Promise<{ data: Float32Array; shape: number[] }> {
  const u = tf.tidy(() => tf.clipByValue(tf.div(tf.sub(x, range[0]), range[1] - range[0]), 0, 1));
  const data = (await u.data()) as Float32Array;
  u.dispose();
  return { data, shape: u.shape };
}

interface Scores {
  psnr: number[];
  ssim: number[];
  residual: number[];
}

async function scoreAgainst(truth: { data: Float32Array; shape: number[] }, x: tf.Tensor, range: [number, number]) {
  const u = await unitImages(x, range);
  return {
    psnr: psnrPerImage(u, truth, { dataRange: [0, 1] }),
    ssim: ssimPerImage(u, truth, { dataRange: [0, 1] }),
  };
}

/** PSNR / SSIM of x against the truth and ‖A x − y‖, per image (a baseline's or the posterior mean's). */
async function scoreWithResidual(
  truth: { data: Float32Array; shape: number[] },
  x: tf.Tensor,
  range: [number, number],
  op: LinearOperator,
  y: tf.Tensor,
): Promise<Scores> {
  return { ...(await scoreAgainst(truth, x, range)), residual: await measurementResidual(op, x, y) };
}

/** Image i's scores, or (i undefined) their means, rounded for the JSON. */
function scoresOf(s: Scores, i?: number): { psnr: number; ssim: number; residual: number } {
  const at = (v: number[]) => round(i === undefined ? mean(v) : v[i]);
  return { psnr: at(s.psnr), ssim: at(s.ssim), residual: at(s.residual) };
}

/** Loads the checkpoint as sbm sample does (EMA unless --no-ema; the reference score for imported ones). */
async function loadModel(o: CommonCliOptions) {
  const loaded = await loadCheckpoint(storage, o.ckpt);
  for (const w of loaded.warnings) process.stderr.write(`${w}\n`);
  const { model, ema, config } = loaded;
  if (o.ema) ema.copyTo(model);
  ema.dispose();
  const sde = createSde(config.sde);
  const score = checkpointScoreFn(model, sde, config);
  return { model, config, sde, score, range: (config.dataRange ?? [0, 1]) as [number, number] };
}

/** Sampler options the flags set (the rest came in --sampler-options), for reword. */
const fromFlags = new Set<string>();

function samplerOptions(o: CommonCliOptions): Record<string, unknown> {
  for (const k of ['steps', 'snr', 'eps', 'denoiseToZero'] as const) if (o[k] !== undefined) fromFlags.add(k);
  return {
    ...(o.steps !== undefined ? { steps: o.steps } : {}),
    ...(o.snr !== undefined ? { snr: o.snr } : {}),
    ...(o.eps !== undefined ? { eps: o.eps } : {}),
    ...(o.denoiseToZero ? { denoiseToZero: true } : {}),
    ...(o.samplerOptions ?? {}),
  };
}

/** Runs the conditional sampler with progress on stderr, turning an abort by a stop signal into its exit code. */
async function runSampler(
  what: string,
  o: CommonCliOptions,
  stop: GracefulStop,
  opts: Record<string, unknown>,
): Promise<ConditionalResult | number> {
  const quiet = o.json === true;
  const progress = quiet ? undefined : new FractionProgress(what);
  try {
    return await flagWords(() =>
      conditionalSample({
        ...(opts as Parameters<typeof conditionalSample>[0]),
        signal: stop.signal,
        ...(progress
          ? {
              onProgress: (p: SampleProgress) => progress.update(p.fraction, `step ${p.step}/${p.steps}  NFE ${p.nfe}`),
            }
          : {}),
      }),
    );
  } catch (e) {
    if (stop.stopped && isSbmError(e, 'ABORTED')) {
      process.stderr.write(`sbm: ${what}: stopped; nothing written\n`);
      return stop.code() ?? EXIT_INTERRUPTED;
    }
    throw e;
  } finally {
    progress?.end();
  }
}

async function emit(o: CommonCliOptions, summary: Record<string, unknown>, line: string): Promise<void> {
  if (typeof o.json === 'string') await writeJsonAtomic(o.json, summary);
  if (o.json === true) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stdout.write(line + '\n');
}

/** The command as typed (arguments with spaces or quotes single-quoted), for the JSON record. */
function commandLine(): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  return ['sbm', ...process.argv.slice(2).map(q)].join(' ');
}

const round = (v: number, d = 4) => (Number.isFinite(v) ? Number(v.toFixed(d)) : v);

/** sbm inpaint | colorize | superres | cs | ct | mri. */
export async function inverseCommand(task: InverseTask, o: InverseCliOptions): Promise<number> {
  const { method } = validateInverseFlags(task, o);
  const early = await peekSampleShape(o.ckpt);
  if (early) validateForShape(task, o, early);
  await startBackend(o.backend, o.json === true);
  const { model, config, sde, score, range } = await loadModel(o);
  const tensors: tf.Tensor[] = [];
  let op: LinearOperator | undefined;
  const stop = new GracefulStop('stopping; nothing is written');
  try {
    const shape = config.data.sampleShape;
    validateForShape(task, o, shape);
    const inputs = await loadInputs(o, shape, range);
    tensors.push(inputs.x);
    op = await buildOperator(task, o, shape);
    const b = inputs.x.shape[0];
    const k = o.samplesPerInput;
    const seeds = seedStream(o.seed);
    const noiseSeed = seeds.next();
    const sampleSeed = seeds.next();
    const noiseStd = o.noiseStd ?? 0;
    // y = A x₀ + σ_y n in the model's data units (the range it trained on). A decoupled A = M·T keeps the unmeasured
    // coordinates in y as zeros (inpainting's missing pixels, MRI's skipped columns): the noise goes on the measured
    // ones only, n ← A A⁺ n (the projection onto range(A); the identity where A has full row rank).
    const y = tf.tidy(() => {
      const ax = op!.forward(inputs.x);
      if (noiseStd === 0) return ax;
      let n = randomNormal(ax.shape, noiseSeed);
      if (op!.decoupled && op!.pinv) n = op!.forward(op!.pinv(n));
      return tf.add(ax, tf.mul(n, noiseStd));
    });
    tensors.push(y);
    // K reconstructions per input: row i·K + j is input i's j-th.
    const rows = Array.from({ length: b * k }, (_, r) => Math.floor(r / k));
    const yRep = k === 1 ? y : tf.gather(y, rows);
    if (k > 1) tensors.push(yRep);
    const settings = methodSettings(o);
    const sOpts = samplerOptions(o);
    const result = await runSampler(`${task} (${method})`, o, stop, {
      method,
      sde,
      score,
      shape: [b * k, ...shape],
      seed: sampleSeed,
      operator: op,
      y: yRep,
      noiseStd,
      ...(o.sampler !== undefined ? { sampler: o.sampler } : {}),
      ...(Object.keys(sOpts).length > 0 ? { samplerOptions: sOpts } : {}),
      ...settings,
    });
    if (typeof result === 'number') return result;
    tensors.push(result.samples);
    const meas = await flagWords(() => measurementImage(task, op!, y, range));
    tensors.push(meas);

    const truth = await unitImages(inputs.x, range);
    const truthRep = { data: new Float32Array((b * k * truth.data.length) / b), shape: [b * k, ...shape] };
    const per = truth.data.length / b;
    rows.forEach((i, r) => truthRep.data.set(truth.data.subarray(i * per, (i + 1) * per), r * per));
    const rec = await scoreAgainst(truthRep, result.samples, range);
    // --posterior-mean: the average of each input's K reconstructions, the Monte-Carlo posterior mean.
    let pm: { x: tf.Tensor; scores: Scores } | undefined;
    if (o.posteriorMean) {
      const x = tf.tidy(() => tf.mean(tf.reshape(result.samples, [b, k, ...shape]), 1));
      tensors.push(x);
      pm = { x, scores: await scoreWithResidual(truth, x, range, op, y) };
    }
    const baselines: Record<string, Scores> = {};
    for (const name of baselinesFor(op)) {
      const xb = await runBaseline(name, op, y);
      try {
        baselines[name] = await scoreWithResidual(truth, xb, range, op, y);
      } finally {
        xb.dispose();
      }
    }

    // Grid rows: truth, the measurement as an image, then the K reconstructions.
    const cols = 2 + k + (pm ? 1 : 0);
    const [xs, ms, rs] = await Promise.all([inputs.x.data(), meas.data(), result.samples.data()]);
    const pms = pm ? await pm.x.data() : undefined;
    const grid = new Float32Array(b * cols * per);
    const measOk = meas.size === b * per;
    for (let i = 0; i < b; i++) {
      const at = (col: number) => (i * cols + col) * per;
      grid.set(xs.subarray(i * per, (i + 1) * per), at(0));
      if (measOk) grid.set(ms.subarray(i * per, (i + 1) * per), at(1));
      else grid.fill(range[0], at(1), at(1) + per);
      for (let j = 0; j < k; j++) grid.set(rs.subarray((i * k + j) * per, (i * k + j + 1) * per), at(2 + j));
      if (pms) grid.set(pms.subarray(i * per, (i + 1) * per), at(2 + k));
    }
    const png = encodeGridPng(gridFromArray(grid, [b * cols, ...shape], { range, columns: cols }));

    const slice = (v: number[], i: number) => v.slice(i * k, (i + 1) * k).map((x) => round(x));
    const perInput = inputs.ids.map((id, i) => ({
      ...id,
      psnr: slice(rec.psnr, i),
      ssim: slice(rec.ssim, i),
      residual: slice(result.residual, i),
      ...(pm ? { posteriorMean: scoresOf(pm.scores, i) } : {}),
      baselines: Object.fromEntries(Object.entries(baselines).map(([name, s]) => [name, scoresOf(s, i)])),
    }));
    const summary = {
      command: task,
      commandLine: commandLine(),
      argv: process.argv.slice(2),
      ckpt: o.ckpt,
      step: config.step,
      ema: o.ema,
      seed: o.seed,
      data: inputs.data ?? 'images',
      operator: { name: op.name, inShape: op.inShape, outShape: op.outShape, ...operatorSettings(task, o) },
      noiseStd,
      method,
      settings,
      sampler: result.stats.sampler ?? o.sampler,
      samplerOptions: sOpts,
      samplesPerInput: k,
      posteriorMean: pm !== undefined,
      nfe: result.stats.nfe,
      ms: Math.round(result.stats.ms),
      ...(result.stats.vjp !== undefined ? { vjp: result.stats.vjp } : {}),
      dataRange: range,
      metricsRange: '[0, 1] (data range mapped onto it, clipped)',
      inputs: perInput,
      mean: {
        psnr: round(mean(rec.psnr)),
        ssim: round(mean(rec.ssim)),
        residual: round(mean(result.residual)),
        ...(pm ? { posteriorMean: scoresOf(pm.scores) } : {}),
        baselines: Object.fromEntries(Object.entries(baselines).map(([name, s]) => [name, scoresOf(s)])),
      },
      out: o.out,
      ...(typeof o.json === 'string' ? { json: o.json } : {}),
    };
    if (stop.stopped) return stop.code() ?? EXIT_INTERRUPTED;
    await writeFileAtomic(o.out, png);
    const best = Object.entries(summary.mean.baselines)
      .map(([name, s]) => `${name} ${s.psnr.toFixed(2)} dB`)
      .join(', ');
    await emit(
      o,
      summary,
      `${task}: ${b} input(s) × ${k} (${method}, ${result.stats.nfe} NFE, ${(result.stats.ms / 1000).toFixed(1)} s): PSNR ${summary.mean.psnr.toFixed(2)} dB, SSIM ${summary.mean.ssim.toFixed(3)}, ‖Ax − y‖ ${summary.mean.residual.toExponential(2)}${pm ? `; mean of ${k}: PSNR ${mean(pm.scores.psnr).toFixed(2)} dB, SSIM ${mean(pm.scores.ssim).toFixed(3)}` : ''}${best ? `; baselines ${best}` : ''} → ${o.out}`,
    );
    return 0;
  } finally {
    stop.dispose();
    tf.dispose(tensors);
    op?.dispose?.();
    model.dispose();
  }
}

/** The operator's flag settings, for the JSON. */
function operatorSettings(task: InverseTask, o: InverseCliOptions): Record<string, unknown> {
  switch (task) {
    case 'inpaint':
      return {
        mask: o.mask ?? 'center-box',
        ...(o.ratio !== undefined ? { ratio: o.ratio } : {}),
        operatorSeed: o.operatorSeed ?? 0,
      };
    case 'superres':
      return { factor: o.factor ?? 4 };
    case 'cs':
      return { ratio: o.ratio ?? 0.25, operatorSeed: o.operatorSeed ?? 0 };
    case 'ct':
      return { views: o.views ?? 23 };
    case 'mri':
      return {
        acceleration: o.acceleration ?? 4,
        ...(o.centerFraction !== undefined ? { centerFraction: o.centerFraction } : {}),
        operatorSeed: o.operatorSeed ?? 0,
      };
    default:
      return {};
  }
}

// ---------------------------------------------------------------------------------------------------------------
// sbm guided

/** Flag checks of sbm guided before anything loads. */
export function validateGuidedFlags(o: GuidedCliOptions): void {
  checkOutputs(o);
  const def = getMethod('guidance');
  checkSampler('guidance', def, o.sampler);
}

/** sbm guided: class-conditional samples by classifier guidance, judged by the clean classifier. */
export async function guidedCommand(o: GuidedCliOptions): Promise<number> {
  validateGuidedFlags(o);
  const early = await peekSampleShape(o.ckpt);
  const mnist = (s: readonly number[]) => s.join() === '28,28,1';
  if (early && !mnist(early)) {
    throw new UsageError(
      `--ckpt: guided uses the MNIST classifiers, which need [28, 28, 1] images; the checkpoint's are [${early.join(', ')}]`,
    );
  }
  if (o.classifier !== undefined) {
    try {
      await fsp.access(o.classifier);
    } catch {
      throw new UsageError(`--classifier: ${o.classifier} does not exist`);
    }
  }
  await startBackend(o.backend, o.json === true);
  const { model, config, sde, score, range } = await loadModel(o);
  const stop = new GracefulStop('stopping; nothing is written');
  const disposers: (() => void)[] = [];
  const tensors: tf.Tensor[] = [];
  try {
    if (!mnist(config.data.sampleShape)) {
      throw new UsageError(`--ckpt: guided needs an MNIST checkpoint ([28, 28, 1] images)`);
    }
    const evalNode = await import('@sbm/mnist-eval/node');
    const noisy = await flagWords(() => loadNoisy(evalNode, o.classifier, sde));
    disposers.push(noisy.dispose);
    const sOpts = samplerOptions(o);
    const result = await runSampler(`guided (label ${o.label})`, o, stop, {
      method: 'guidance',
      sde,
      score,
      shape: [o.n, ...config.data.sampleShape],
      seed: o.seed,
      classifier: noisy.fn,
      label: o.label,
      scale: o.scale,
      ...(o.sampler !== undefined ? { sampler: o.sampler } : {}),
      ...(Object.keys(sOpts).length > 0 ? { samplerOptions: sOpts } : {}),
    });
    if (typeof result === 'number') return result;
    tensors.push(result.samples);
    const clean = await evalNode.loadDefaultClassifier({ inputRange: range });
    disposers.push(() => clean.dispose());
    const { probs, classes } = await clean.predict(result.samples as tf.Tensor4D, {
      range,
      // Samples overshoot the data range (an untrained model by far): judged as the grid shows them, clipped.
      outOfRange: 'clip',
    });
    tensors.push(probs, classes);
    const predicted = Array.from(await classes.data());
    const agree = predicted.filter((c) => c === o.label).length;
    const histogram = Array.from({ length: 10 }, (_, c) => predicted.filter((p) => p === c).length);
    const xs = await result.samples.data();
    const png = encodeGridPng(gridFromArray(xs, [o.n, ...config.data.sampleShape], { range }));
    const summary = {
      command: 'guided',
      commandLine: commandLine(),
      argv: process.argv.slice(2),
      ckpt: o.ckpt,
      step: config.step,
      ema: o.ema,
      seed: o.seed,
      label: o.label,
      scale: o.scale,
      classifier: o.classifier ?? 'shipped noise-conditional MNIST classifier',
      n: o.n,
      sampler: result.stats.sampler ?? o.sampler,
      samplerOptions: sOpts,
      nfe: result.stats.nfe,
      ...(result.stats.vjp !== undefined ? { vjp: result.stats.vjp } : {}),
      ms: Math.round(result.stats.ms),
      // The clean (not noise-conditional) shipped classifier judges the samples: a different network than the guide.
      agreement: agree / o.n,
      predicted: histogram,
      out: o.out,
      ...(typeof o.json === 'string' ? { json: o.json } : {}),
    };
    if (stop.stopped) return stop.code() ?? EXIT_INTERRUPTED;
    await writeFileAtomic(o.out, png);
    await emit(
      o,
      summary,
      `guided: ${o.n} samples of label ${o.label} (scale ${o.scale}, ${result.stats.nfe} NFE, ${(result.stats.ms / 1000).toFixed(1)} s): the clean classifier agrees on ${agree}/${o.n} → ${o.out}`,
    );
    return 0;
  } finally {
    stop.dispose();
    tf.dispose(tensors);
    for (const d of disposers.reverse()) d();
    model.dispose();
  }
}

/**
 * The noise-conditional classifier (its `logits(x, t)` is the TimeClassifierFn guidance takes), told the checkpoint's
 * SDE so that it reads σ(t) as the score model does; it refuses SDEs with α(t) ≠ 1 (it learnt x₀ + σ z).
 */
async function loadNoisy(
  evalNode: typeof import('@sbm/mnist-eval/node'),
  path: string | undefined,
  sde: Sde,
): Promise<{ fn: (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor; dispose: () => void }> {
  const c = await evalNode.loadDefaultNoisyClassifier({ ...(path !== undefined ? { path } : {}), sde });
  return { fn: c.logits, dispose: () => c.dispose() };
}
