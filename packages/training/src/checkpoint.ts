import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue, isSbmError, type CheckpointStorage } from '@sbm/core';
import { ExponentialMovingAverage, modelFromConfig, type ModelConfig, type ScoreModel } from '@sbm/models';
import type { SdeConfig } from '@sbm/sde';
import type { BatchPosition } from '@sbm/datasets';
import type { AdamState } from './adam';
import { crc32 } from './crc32';

/** Version of the checkpoint layout written by this package. */
export const CHECKPOINT_FORMAT_VERSION = 1;
/** The pointer file at the checkpoint location, written last: it names the slot holding the latest checkpoint. */
export const POINTER_FILE = 'checkpoint.json';
/** The config / state file inside a slot. */
export const CONFIG_FILE = 'config.json';
/** The two slots a location alternates between, so a save never touches the checkpoint the pointer names. */
export const SLOTS = ['slot-a', 'slot-b'] as const;
export type Slot = (typeof SLOTS)[number];

/** Sub-locations of a slot holding tf.io artifacts (model.json + weights.bin each). */
export const ARTIFACT_SETS = ['model', 'ema', 'optimizer'] as const;
type ArtifactSet = (typeof ARTIFACT_SETS)[number];

/** Integrity record of one artifact set. */
export interface ArtifactInfo {
  bytes: number;
  crc32: number;
  names: string[];
}

/** What config.json holds: everything besides the tensors needed to rebuild, sample from or resume a run. */
export interface CheckpointConfig {
  format: 'sbm-training-checkpoint';
  formatVersion: number;
  createdBy: string;
  sde: SdeConfig;
  model: ModelConfig;
  /** Range of the training data, e.g. [-1, 1] (null when unknown): samplers and bits/dim need it. */
  dataRange: [number, number] | null;
  data: { size: number | null; sampleShape: number[]; stepsPerEpoch: number };
  training: {
    loss: Record<string, unknown>;
    batchSize: number;
    lr: number;
    warmup: number;
    gradClip: number | null;
    adam: { beta1: number; beta2: number; eps: number };
    ema: { decay: number; warmup: boolean };
    totalSteps: number;
  };
  /** Optimizer updates taken. */
  step: number;
  /** Epoch of the next batch. */
  epoch: number;
  /** Position of the next batch (the data source resumes from here). */
  next: BatchPosition;
  seed: number;
  /** The per-step randomness is a pure function of (seed, step): the step count is the whole RNG state. */
  rng: { kind: 'counter'; seed: number; step: number };
  emaUpdates: number;
  lossHistory: LossHistory;
  files: Record<ArtifactSet, ArtifactInfo>;
}

/** Mean training loss over windows of `every` steps (`steps[i]` is the last step of window i). */
export interface LossHistory {
  every: number;
  steps: number[];
  values: number[];
  /** The window in progress. */
  pending: { sum: number; count: number };
}

/** What the pointer records of a slot it vouches for. */
export interface SlotRecord {
  step: number;
  /** CRC-32 of the slot's config.json in canonical form (configChecksum). */
  configCrc32: number;
}

export interface CheckpointPointer {
  format: 'sbm-checkpoint-pointer';
  formatVersion: number;
  slot: Slot;
  step: number;
  /**
   * Step and config checksum of each slot known to hold a complete checkpoint: the named one, and the other one
   * while it is untouched (the loader's fallback). Absent in pointers written before checksums (loaded with a note).
   */
  slots?: Partial<Record<Slot, SlotRecord>>;
}

/** Why a load used the slot the pointer does not name. */
export interface SlotFallback {
  /** The slot the pointer names, which did not verify. */
  slot: Slot;
  step: number;
  reason: string;
}

/** The raw contents of a checkpoint: tensors by name (the caller disposes them) and the config. */
export interface CheckpointData {
  config: CheckpointConfig;
  /** The slot loaded: the one the pointer names, or the other one after a fallback. */
  slot: Slot;
  /** Set when the named slot did not verify and the other, intact one was loaded instead. */
  fellBackFrom?: SlotFallback;
  /** Lines for the user: a fallback, a checkpoint without config checksum. */
  warnings: string[];
  model: tf.NamedTensorMap;
  ema: tf.NamedTensorMap;
  optimizer: AdamState;
}

export function otherSlot(slot: Slot): Slot {
  return slot === 'slot-a' ? 'slot-b' : 'slot-a';
}

/** JSON with sorted keys and no whitespace, so two configs compare (and checksum) equal whatever their layout. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : val,
  );
}

/**
 * The checksum the pointer records of a config.json: CRC-32 of its canonical JSON, so re-indenting the file keeps
 * it, while any changed value (another SDE, β, step) does not.
 */
export function configChecksum(config: unknown): number {
  return crc32(new TextEncoder().encode(canonicalJson(config)));
}

export function joinLocation(location: string, ...parts: string[]): string {
  return [location.replace(/\/+$/, ''), ...parts].join('/');
}

function corrupt(location: string, what: string, details?: Record<string, unknown>): SbmError {
  return new SbmError('CORRUPT_CHECKPOINT', `checkpoint ${location}: ${what}`, { location, ...details });
}

const textDecoder = new TextDecoder();

async function encodeArtifacts(
  weights: tf.NamedTensorMap,
  topology: Record<string, unknown>,
): Promise<{ artifacts: tf.io.ModelArtifacts; info: ArtifactInfo }> {
  const names = Object.keys(weights);
  const { data, specs } = await tf.io.encodeWeights(weights);
  const bytes = new Uint8Array(data);
  return {
    artifacts: {
      modelTopology: topology,
      format: 'sbm-weights',
      generatedBy: '@sbm/training',
      weightSpecs: specs,
      weightData: data,
    },
    info: { bytes: bytes.byteLength, crc32: crc32(bytes), names },
  };
}

/** Everything a save needs; tensors are read, not consumed. */
export interface CheckpointContents {
  model: ScoreModel;
  ema: ExponentialMovingAverage;
  optimizer: AdamState;
  config: Omit<CheckpointConfig, 'files' | 'format' | 'formatVersion' | 'createdBy'>;
}

/** Reads the pointer, or undefined when the location holds no checkpoint yet. */
export async function readPointer(
  storage: CheckpointStorage,
  location: string,
): Promise<CheckpointPointer | undefined> {
  let raw: Uint8Array;
  try {
    raw = await storage.readFile(location, POINTER_FILE);
  } catch (e) {
    if (isSbmError(e) && e.code === 'FILE_NOT_FOUND') return undefined;
    throw e;
  }
  return parsePointer(raw, location);
}

function parsePointer(raw: Uint8Array, location: string): CheckpointPointer {
  let p: CheckpointPointer;
  try {
    p = JSON.parse(textDecoder.decode(raw)) as CheckpointPointer;
  } catch (e) {
    throw corrupt(location, `${POINTER_FILE} is not valid JSON (${String(e)})`);
  }
  if (
    p === null ||
    typeof p !== 'object' ||
    p.format !== 'sbm-checkpoint-pointer' ||
    !SLOTS.includes(p.slot) ||
    !Number.isInteger(p.step)
  ) {
    throw corrupt(location, `${POINTER_FILE} is not an sbm checkpoint pointer: ${describeValue(p)}`);
  }
  if (p.slots !== undefined) {
    const ok =
      p.slots !== null &&
      typeof p.slots === 'object' &&
      Object.entries(p.slots).every(
        ([k, r]) =>
          SLOTS.includes(k as Slot) &&
          r !== null &&
          typeof r === 'object' &&
          Number.isInteger(r.step) &&
          Number.isInteger(r.configCrc32),
      );
    if (!ok) throw corrupt(location, `${POINTER_FILE}: slots is malformed: ${JSON.stringify(p.slots)}`);
  }
  if (p.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw new SbmError(
      'UNSUPPORTED',
      `checkpoint ${location}: format version ${p.formatVersion} is not supported (expected ${CHECKPOINT_FORMAT_VERSION})`,
    );
  }
  return p;
}

export interface SaveCheckpointOptions {
  /**
   * The slot to write (default: the one the pointer does not name). After a load fell back to the slot the
   * pointer does not name, pass the damaged one here, so the save never overwrites the one intact checkpoint.
   */
  slot?: Slot;
}

/**
 * Writes a complete checkpoint into the slot the pointer does not name, then rewrites the pointer (one atomic
 * file write) to name it. Until that last write the previous checkpoint is untouched and stays the one loaded, so
 * a crash or SIGKILL at any moment leaves a loadable checkpoint. Returns the slot written. A damaged pointer is
 * CORRUPT_CHECKPOINT (nothing is written): it is never taken for "no checkpoint yet".
 */
export async function saveCheckpoint(
  storage: CheckpointStorage,
  location: string,
  contents: CheckpointContents,
  opts: SaveCheckpointOptions = {},
): Promise<Slot> {
  const current = await readPointer(storage, location);
  if (opts.slot !== undefined && !SLOTS.includes(opts.slot)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `saveCheckpoint: slot: expected "slot-a" or "slot-b", got ${describeValue(opts.slot)}`,
      {
        argument: 'slot',
      },
    );
  }
  const slot: Slot = opts.slot ?? (current?.slot === 'slot-a' ? 'slot-b' : 'slot-a');
  const kept = otherSlot(slot);
  const dir = joinLocation(location, slot);
  const modelWeights = Object.fromEntries(contents.model.getWeights().map((w) => [w.name, w.tensor]));
  const emaWeights = Object.fromEntries(contents.ema.getWeights().map((w) => [w.name, w.tensor]));
  const optWeights: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(contents.optimizer.m)) optWeights[`m/${name}`] = t;
  for (const [name, t] of Object.entries(contents.optimizer.v)) optWeights[`v/${name}`] = t;
  const sets: Record<ArtifactSet, tf.NamedTensorMap> = { model: modelWeights, ema: emaWeights, optimizer: optWeights };
  const files = {} as Record<ArtifactSet, ArtifactInfo>;
  for (const set of ARTIFACT_SETS) {
    const topology = { sbm: set, model: contents.config.model, step: contents.config.step };
    const { artifacts, info } = await encodeArtifacts(sets[set], topology);
    const handler = storage.handler(joinLocation(dir, set));
    if (typeof handler.save !== 'function') {
      throw new SbmError('UNSUPPORTED', `saveCheckpoint: storage.handler(${dir}/${set}) cannot save`);
    }
    await handler.save(artifacts);
    files[set] = info;
  }
  const config: CheckpointConfig = {
    format: 'sbm-training-checkpoint',
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    createdBy: '@sbm/training 0.1.0',
    ...contents.config,
    files,
  };
  await storage.writeFile(dir, CONFIG_FILE, JSON.stringify(config, null, 1));
  const slots: Partial<Record<Slot, SlotRecord>> = {
    [slot]: { step: config.step, configCrc32: configChecksum(config) },
  };
  // The untouched slot stays vouched for, so the loader can fall back to it.
  const keptRecord = current?.slots?.[kept];
  if (keptRecord) slots[kept] = keptRecord;
  const pointer: CheckpointPointer = {
    format: 'sbm-checkpoint-pointer',
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    slot,
    step: contents.config.step,
    slots,
  };
  await storage.writeFile(location, POINTER_FILE, JSON.stringify(pointer));
  return slot;
}

function checkConfig(c: CheckpointConfig, location: string): CheckpointConfig {
  const bad = (field: string) => corrupt(location, `config.json: ${field} is missing or malformed`, { field });
  if (c === null || typeof c !== 'object' || c.format !== 'sbm-training-checkpoint') throw bad('format');
  if (c.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw new SbmError(
      'UNSUPPORTED',
      `checkpoint ${location}: config format version ${describeValue(c.formatVersion)} is not supported`,
    );
  }
  if (!c.sde || typeof c.sde.name !== 'string') throw bad('sde');
  if (!c.model || typeof c.model.name !== 'string') throw bad('model');
  for (const k of ['step', 'epoch', 'seed', 'emaUpdates'] as const) if (!Number.isInteger(c[k])) throw bad(k);
  if (!c.next || !Number.isInteger(c.next.epoch) || !Number.isInteger(c.next.step)) throw bad('next');
  if (!c.training || typeof c.training !== 'object' || !Number.isInteger(c.training.batchSize)) throw bad('training');
  if (!c.lossHistory || !Array.isArray(c.lossHistory.values)) throw bad('lossHistory');
  if (!c.data || !Array.isArray(c.data.sampleShape)) throw bad('data');
  for (const set of ARTIFACT_SETS) {
    const f = c.files?.[set];
    if (!f || !Number.isInteger(f.bytes) || !Number.isInteger(f.crc32) || !Array.isArray(f.names)) {
      throw bad(`files.${set}`);
    }
  }
  return c;
}

async function loadArtifactSet(
  storage: CheckpointStorage,
  location: string,
  dir: string,
  set: ArtifactSet,
  info: ArtifactInfo,
): Promise<tf.NamedTensorMap> {
  const where = joinLocation(dir, set);
  let artifacts: tf.io.ModelArtifacts;
  try {
    artifacts = await storage.handler(where).load!();
  } catch (e) {
    if (isSbmError(e) && (e.code === 'FILE_NOT_FOUND' || e.code === 'CORRUPT_CHECKPOINT')) {
      throw corrupt(location, `the ${set} weights at ${where} cannot be read: ${e.message}`);
    }
    throw e;
  }
  const parts = artifacts.weightData;
  const data = Array.isArray(parts) ? tf.io.concatenateArrayBuffers(parts) : parts;
  if (!data || !artifacts.weightSpecs) throw corrupt(location, `the ${set} artifacts at ${where} hold no weights`);
  const bytes = new Uint8Array(data);
  if (bytes.byteLength !== info.bytes || crc32(bytes) !== info.crc32) {
    throw corrupt(
      location,
      `the ${set} weights at ${where} do not match config.json (${bytes.byteLength} bytes, crc32 ${crc32(bytes)}; ` +
        `expected ${info.bytes} bytes, crc32 ${info.crc32}): truncated or overwritten`,
    );
  }
  const names = artifacts.weightSpecs.map((s) => s.name);
  if (names.join('\n') !== info.names.join('\n')) {
    throw corrupt(location, `the ${set} weight names at ${where} differ from those recorded in config.json`);
  }
  try {
    return tf.io.decodeWeights(data, artifacts.weightSpecs);
  } catch (e) {
    throw corrupt(location, `the ${set} weights at ${where} cannot be decoded: ${String(e)}`);
  }
}

export interface ReadCheckpointOptions {
  /**
   * When the slot the pointer names does not verify (missing or truncated file, CRC or config checksum mismatch,
   * bad JSON), load the other slot if that one verifies, and say so in `fellBackFrom` / `warnings` (default true).
   * false: CORRUPT_CHECKPOINT instead.
   */
  fallback?: boolean;
}

/**
 * Reads the checkpoint the pointer at `location` names: config and tensors by name, checked against the sizes and
 * CRC-32s recorded at save time, and the config against the checksum the pointer records. If that slot is damaged,
 * the other slot is loaded when it verifies (see ReadCheckpointOptions.fallback). FILE_NOT_FOUND when there is no
 * checkpoint, CORRUPT_CHECKPOINT when the pointer is damaged or no slot verifies. The caller disposes the tensors.
 */
export async function readCheckpoint(
  storage: CheckpointStorage,
  location: string,
  opts: ReadCheckpointOptions = {},
): Promise<CheckpointData> {
  checkStorage(storage);
  let raw: Uint8Array;
  try {
    raw = await storage.readFile(location, POINTER_FILE);
  } catch (e) {
    if (isSbmError(e) && e.code === 'FILE_NOT_FOUND') {
      throw new SbmError('FILE_NOT_FOUND', `checkpoint ${location}: no checkpoint here (${POINTER_FILE} is missing)`, {
        location,
      });
    }
    throw e;
  }
  const pointer = parsePointer(raw, location);
  const named = pointer.slot;
  try {
    return await readSlot(storage, location, named, pointer.step, pointer.slots?.[named], pointer.slots !== undefined);
  } catch (e) {
    if (!isSbmError(e, 'CORRUPT_CHECKPOINT') || opts.fallback === false) throw e;
    const other = otherSlot(named);
    const record = pointer.slots?.[other];
    let data: CheckpointData;
    try {
      data = await readSlot(storage, location, other, record?.step, record, pointer.slots !== undefined);
    } catch (e2) {
      if (!isSbmError(e2) || (e2.code !== 'CORRUPT_CHECKPOINT' && e2.code !== 'FILE_NOT_FOUND')) throw e2;
      throw new SbmError(
        'CORRUPT_CHECKPOINT',
        `${e.message}; the other slot, ${other}, cannot be used either: ${e2.message.replace(/^checkpoint [^:]*: /, '')}`,
        { ...e.details, fallback: { slot: other, reason: e2.message } },
        { cause: e },
      );
    }
    const reason = e.message.replace(/^checkpoint [^:]*: /, '');
    data.fellBackFrom = { slot: named, step: pointer.step, reason };
    data.warnings.unshift(
      `checkpoint ${location}: ${named} (step ${pointer.step}, named by ${POINTER_FILE}) is damaged (${reason}); ` +
        `loaded ${other} (step ${data.config.step}) instead`,
    );
    return data;
  }
}

/**
 * Reads and verifies one slot. `step` / `record`: what the pointer says of it (undefined: nothing, then only the
 * slot's own CRCs are checked). `checksums`: whether the pointer records checksums at all (false: an old one).
 */
async function readSlot(
  storage: CheckpointStorage,
  location: string,
  slot: Slot,
  step: number | undefined,
  record: SlotRecord | undefined,
  checksums: boolean,
): Promise<CheckpointData> {
  const dir = joinLocation(location, slot);
  const warnings: string[] = [];
  let config: CheckpointConfig;
  try {
    config = JSON.parse(textDecoder.decode(await storage.readFile(dir, CONFIG_FILE))) as CheckpointConfig;
  } catch (e) {
    if (isSbmError(e) && e.code !== 'FILE_NOT_FOUND') throw e;
    throw corrupt(location, `${slot}/${CONFIG_FILE} is missing or not valid JSON (${String(e)})`, { slot });
  }
  checkConfig(config, location);
  if (step !== undefined && config.step !== step) {
    throw corrupt(location, `${POINTER_FILE} names step ${step} for ${slot} but ${slot} holds step ${config.step}`, {
      slot,
    });
  }
  if (record) {
    const sum = configChecksum(config);
    if (sum !== record.configCrc32) {
      throw corrupt(
        location,
        `${slot}/${CONFIG_FILE} does not match the checksum in ${POINTER_FILE} (crc32 ${sum}, recorded ` +
          `${record.configCrc32}): it was edited or damaged after the save`,
        { slot, field: 'configCrc32' },
      );
    }
  } else if (!checksums) {
    warnings.push(
      `checkpoint ${location}: ${slot}/${CONFIG_FILE} carries no checksum (saved by an earlier @sbm/training); ` +
        'its weights are verified, its settings are not',
    );
  } else {
    warnings.push(
      `checkpoint ${location}: ${slot}/${CONFIG_FILE} is not vouched for by ${POINTER_FILE} ` +
        '(its save was not completed or predates checksums); its weights are verified, its settings are not',
    );
  }
  const loaded: tf.NamedTensorMap[] = [];
  try {
    for (const set of ARTIFACT_SETS) loaded.push(await loadArtifactSet(storage, location, dir, set, config.files[set]));
  } catch (e) {
    for (const m of loaded) tf.dispose(m);
    throw e;
  }
  const [model, ema, opt] = loaded;
  const m: tf.NamedTensorMap = {};
  const v: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(opt)) {
    if (name.startsWith('m/')) m[name.slice(2)] = t;
    else if (name.startsWith('v/')) v[name.slice(2)] = t;
    else {
      for (const x of loaded) tf.dispose(x);
      throw corrupt(location, `unexpected optimizer entry "${name}"`, { slot });
    }
  }
  return { config, slot, warnings, model, ema, optimizer: { step: config.step, m, v } };
}

export interface LoadedCheckpoint {
  /** The network with the trained (not averaged) weights. */
  model: ScoreModel;
  /** The EMA of the weights, tied to `model`: `ema.copyTo(model)` puts the averaged weights in for sampling. */
  ema: ExponentialMovingAverage;
  /** Adam's step and moments by weight name (the caller disposes the tensors). */
  optimizerState: AdamState;
  config: CheckpointConfig;
  /** The slot loaded. */
  slot: Slot;
  /** Set when the slot the pointer names was damaged and the other, intact one was loaded. */
  fellBackFrom?: SlotFallback;
  /** Lines for the user (a fallback; a checkpoint saved without config checksum). */
  warnings: string[];
}

/**
 * Loads the latest checkpoint at `location`: rebuilds the model from its config (`modelFromConfig`), loads the
 * weights and the EMA. Errors: FILE_NOT_FOUND (no checkpoint), CORRUPT_CHECKPOINT (a damaged pointer, or no slot
 * whose files verify); a damaged named slot falls back to the other one when it verifies (`fellBackFrom`,
 * `warnings`; see readCheckpoint). Nothing is written. The caller disposes `model`, `ema` and the optimizer tensors.
 */
export async function loadCheckpoint(
  storage: CheckpointStorage,
  location: string,
  opts: ReadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  const data = await readCheckpoint(storage, location, opts);
  let model: ScoreModel | undefined;
  let ema: ExponentialMovingAverage | undefined;
  try {
    model = modelFromConfig(data.config.model);
    model.setWeights(data.model);
    ema = new ExponentialMovingAverage(model, data.config.training.ema);
    ema.setWeights(
      Object.entries(data.ema).map(([name, tensor]) => ({ name, tensor })),
      data.config.emaUpdates,
    );
  } catch (e) {
    model?.dispose();
    ema?.dispose();
    tf.dispose([data.model, data.ema, data.optimizer.m, data.optimizer.v]);
    if (isSbmError(e) && e.code !== 'CORRUPT_CHECKPOINT') {
      throw corrupt(location, `the weights do not fit the model config: ${e.message}`);
    }
    throw e;
  }
  tf.dispose([data.model, data.ema]);
  return {
    model,
    ema,
    optimizerState: data.optimizer,
    config: data.config,
    slot: data.slot,
    ...(data.fellBackFrom ? { fellBackFrom: data.fellBackFrom } : {}),
    warnings: data.warnings,
  };
}

export function checkStorage(storage: unknown): CheckpointStorage {
  const s = storage as CheckpointStorage;
  if (
    s === null ||
    typeof s !== 'object' ||
    typeof s.handler !== 'function' ||
    typeof s.readFile !== 'function' ||
    typeof s.writeFile !== 'function'
  ) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `storage: expected a CheckpointStorage { handler, readFile, writeFile, exists }, got ${describeValue(storage)}`,
      { argument: 'storage' },
    );
  }
  return s;
}
