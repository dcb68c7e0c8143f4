import * as tf from '@tensorflow/tfjs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SbmError, describeValue, type CheckpointLock, type CheckpointStorage } from '@sbm/core';
import { lockDirectory, type LockDirectoryOptions } from './lock';
import { atomicWriteFiles, ioError, nodeFs, type FsOps } from './atomic';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Bytes per stored element for each dtype / quantization (tfjs io/types.ts). */
const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

function checkLocation(location: unknown, fn: string): string {
  if (typeof location !== 'string' || location.length === 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${fn}: location: expected a directory path, got ${describeValue(location)}`,
    );
  }
  return location.startsWith('file://') ? fileURLToPath(location) : resolve(location);
}

function checkName(name: unknown, fn: string): string {
  if (typeof name !== 'string' || !/^[\w][\w.-]*$/.test(name) || name.includes('..')) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${fn}: name: expected a plain file name (letters, digits, '.', '-', '_'), got ${describeValue(name)}`,
    );
  }
  return name;
}

function joinWeights(data: tf.io.WeightData): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), offset);
    offset += p.byteLength;
  }
  return out;
}

/** Expected byte length of the weights in `specs`, or undefined when it is not fixed (string tensors). */
function expectedBytes(specs: tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const s of specs) {
    const per = BYTES[s.quantization?.dtype ?? s.dtype];
    if (per === undefined) return undefined;
    total += s.shape.reduce((a, b) => a * b, 1) * per;
  }
  return total;
}

export interface FileStorageOptions {
  /** File operations (tests inject failures here). */
  fs?: FsOps;
}

/**
 * Checkpoints in directories of the file system, in the layout tfjs-node's `file://` handler uses (model.json plus
 * one weights.bin), so tfjs tools can read them. Every write is atomic (see atomicWriteFiles): a failed save leaves
 * the previous checkpoint intact.
 */
export class FileCheckpointStorage implements CheckpointStorage {
  private readonly fs: FsOps;

  constructor(opts: FileStorageOptions = {}) {
    this.fs = opts.fs ?? nodeFs;
  }

  handler(location: string): tf.io.IOHandler {
    const dir = checkLocation(location, 'handler');
    return {
      save: (artifacts) => this.save(dir, artifacts),
      load: () => this.load(dir),
    };
  }

  async exists(location: string): Promise<boolean> {
    return this.fs.exists(join(checkLocation(location, 'exists'), MODEL_JSON));
  }

  /**
   * The writer lock of directory `location` (lockDirectory: `sbm.lock` with pid, hostname and start time; LOCKED
   * for a live holder, a stale one taken over; leftover temporaries of interrupted saves removed under it).
   */
  async lock(location: string, opts?: LockDirectoryOptions): Promise<CheckpointLock> {
    return lockDirectory(checkLocation(location, 'lock'), opts);
  }

  async writeFile(location: string, name: string, data: Uint8Array | string): Promise<void> {
    const dir = checkLocation(location, 'writeFile');
    checkName(name, 'writeFile');
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `writeFile: data: expected a Uint8Array or string, got ${describeValue(data)}`,
      );
    }
    const bytes = typeof data === 'string' ? textEncoder.encode(data) : data;
    await atomicWriteFiles(this.fs, dir, [{ name, data: bytes }], `writeFile ${name}`);
  }

  async readFile(location: string, name: string): Promise<Uint8Array> {
    const dir = checkLocation(location, 'readFile');
    checkName(name, 'readFile');
    return this.read(join(dir, name), 'readFile');
  }

  private async read(path: string, what: string): Promise<Uint8Array> {
    try {
      return await this.fs.readFile(path);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') {
        throw new SbmError('FILE_NOT_FOUND', `${what}: ${path} does not exist`, { path });
      }
      throw ioError(`${what}: reading ${path} failed`, e);
    }
  }

  private async save(dir: string, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
    if (artifacts.modelTopology instanceof ArrayBuffer) {
      throw new SbmError(
        'UNSUPPORTED',
        'save: binary (protobuf) model topologies are not supported; save a JSON topology',
      );
    }
    const weights = artifacts.weightData === undefined ? new Uint8Array(0) : joinWeights(artifacts.weightData);
    const modelJson: Record<string, unknown> = {
      modelTopology: artifacts.modelTopology,
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy,
      weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
    };
    for (const key of [
      'trainingConfig',
      'signature',
      'userDefinedMetadata',
      'modelInitializer',
      'initializerSignature',
    ] as const) {
      if (artifacts[key] !== undefined) modelJson[key] = artifacts[key];
    }
    let jsonBytes: Uint8Array;
    try {
      jsonBytes = textEncoder.encode(JSON.stringify(modelJson));
    } catch (e) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `save: the model artifacts cannot be written as JSON: ${String(e)}`,
        undefined,
        {
          cause: e,
        },
      );
    }
    // weights.bin first: a reader that sees the new model.json always finds weights written with it.
    await atomicWriteFiles(
      this.fs,
      dir,
      [
        { name: WEIGHTS_BIN, data: weights },
        { name: MODEL_JSON, data: jsonBytes },
      ],
      `save checkpoint ${dir}`,
    );
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }

  private async load(dir: string): Promise<tf.io.ModelArtifacts> {
    const jsonPath = join(dir, MODEL_JSON);
    let modelJson: tf.io.ModelJSON;
    const raw = await this.read(jsonPath, 'load checkpoint');
    try {
      modelJson = JSON.parse(textDecoder.decode(raw)) as tf.io.ModelJSON;
    } catch (e) {
      throw new SbmError('CORRUPT_CHECKPOINT', `load checkpoint: ${jsonPath} is not valid JSON (${String(e)})`, {
        path: jsonPath,
      });
    }
    if (typeof modelJson !== 'object' || modelJson === null || !('modelTopology' in modelJson)) {
      throw new SbmError('CORRUPT_CHECKPOINT', `load checkpoint: ${jsonPath} has no modelTopology`, { path: jsonPath });
    }
    return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
      if (!Array.isArray(manifest)) {
        throw new SbmError('CORRUPT_CHECKPOINT', `load checkpoint: ${jsonPath}: weightsManifest is not an array`);
      }
      const specs: tf.io.WeightsManifestEntry[] = [];
      const parts: Uint8Array[] = [];
      for (const group of manifest) {
        specs.push(...group.weights);
        for (const p of group.paths) {
          const path = join(dir, p);
          try {
            parts.push(await this.fs.readFile(path));
          } catch (e) {
            if ((e as { code?: string }).code === 'ENOENT') {
              throw new SbmError('CORRUPT_CHECKPOINT', `load checkpoint: ${jsonPath} lists ${p}, which is missing`, {
                path,
              });
            }
            throw ioError(`load checkpoint: reading ${path} failed`, e);
          }
        }
      }
      const data = joinWeights(
        parts.map((u) => u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer),
      );
      const expected = expectedBytes(specs);
      if (expected !== undefined && expected !== data.byteLength) {
        throw new SbmError(
          'CORRUPT_CHECKPOINT',
          `load checkpoint: ${dir}: the weights hold ${data.byteLength} bytes but model.json describes ${expected}`,
          { expected, received: data.byteLength },
        );
      }
      return [specs, data.buffer as ArrayBuffer];
    });
  }
}

/** File-system checkpoint storage (`new FileCheckpointStorage()`). */
export function fileStorage(opts?: FileStorageOptions): FileCheckpointStorage {
  return new FileCheckpointStorage(opts);
}
