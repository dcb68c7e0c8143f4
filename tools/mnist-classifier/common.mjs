// Helpers shared by train.mjs and train-noisy.mjs.
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { decodeSafetensorsRaw } from '@sbm/safetensors';

/** Reads the parsed option `name` as a safe integer, or throws naming the flag. */
export function intArg(args, name) {
  const v = Number(args[name]);
  if (!Number.isSafeInteger(v)) throw new Error(`--${name}: expected an integer, got ${args[name]}`);
  return v;
}

/**
 * Writes `bytes` to `<outDir>/<fileName>` (via a .tmp file and a rename) and returns the file's path, its SHA-256
 * and the SHA-256 of the weights alone: the tensors named in `paramNames`, in that order, as little-endian float32.
 * The file's hash changes with its metadata (date, timings); the weights' hash is equal across runs with the same
 * seed and backend.
 */
export async function writeWeights(outDir, fileName, bytes, paramNames) {
  const dir = resolve(outDir);
  await mkdir(dir, { recursive: true });
  const file = join(dir, fileName);
  await writeFile(`${file}.tmp`, bytes);
  await rename(`${file}.tmp`, file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const weightsHash = createHash('sha256');
  const raw = decodeSafetensorsRaw(bytes);
  for (const name of paramNames) {
    const v = raw.tensors[name].values;
    weightsHash.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return { file, sha256, weightsSha256: weightsHash.digest('hex') };
}
