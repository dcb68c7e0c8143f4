import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { SbmError, isSbmError } from '@sbm/core';
import { readPointer, type CheckpointPointer } from '@sbm/training';
import { FileCheckpointStorage } from '@sbm/backend-node';
import { UsageError } from './errors';
import { writeJsonAtomic } from './util';

/** Side file the CLI keeps next to a checkpoint: what the checkpoint alone does not record (the data set's name). */
export const RUN_FILE = 'sbm-run.json';

export interface RunFile {
  format: 'sbm-cli-run';
  data: string;
  sde: string;
  model: string;
  seed: number;
  dataSize: number;
  imageSize?: number;
  channels?: number;
  /** Score-matching loss, when not the default (dsm). */
  loss?: string;
  /**
   * Plugin modules loaded when the run was trained (a package name, or an absolute path): `sbm sample` / `sbm nll`
   * load them again, since the checkpoint's config names what they registered (an SDE like "cosine-vp").
   */
  plugins?: { module: string; version: string }[];
}

export const storage = new FileCheckpointStorage();

/**
 * The run file of `dir`, or undefined when there is none. A file that is there but is not a run file is an error:
 * treating it as absent would drop what it records (the data set, the plugins to load) without a word.
 */
export async function readRunFile(dir: string): Promise<RunFile | undefined> {
  const path = join(dir, RUN_FILE);
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new SbmError('IO_ERROR', `cannot read ${path} (${(e as Error).message})`, { path });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new SbmError('CORRUPT_CHECKPOINT', `${path} is not valid JSON (${(e as Error).message})`, { path });
  }
  const run = parsed as RunFile | null;
  if (run === null || typeof run !== 'object' || run.format !== 'sbm-cli-run' || typeof run.data !== 'string') {
    throw new SbmError('CORRUPT_CHECKPOINT', `${path} is not an sbm run file (format "sbm-cli-run")`, { path });
  }
  return run;
}

export async function writeRunFile(dir: string, run: Omit<RunFile, 'format'>): Promise<void> {
  await writeJsonAtomic(join(dir, RUN_FILE), { format: 'sbm-cli-run', ...run });
}

/**
 * The checkpoint pointer of `dir`, or undefined when `dir` holds none yet. A pointer that is there but damaged
 * (empty, truncated, not JSON) is CORRUPT_CHECKPOINT naming the flag: "no checkpoint" would let sbm train start
 * over and overwrite the slots it still points into.
 */
export async function readPointerFor(dir: string, flag: string): Promise<CheckpointPointer | undefined> {
  try {
    return await readPointer(storage, dir);
  } catch (e) {
    if (isSbmError(e)) throw new SbmError(e.code, `${flag}: ${e.message}`, e.details, { cause: e });
    throw e;
  }
}

/** Fails with one line when `dir` holds no sbm checkpoint (before any backend or tensor work starts). */
export async function requireCheckpoint(dir: string, flag = '--ckpt'): Promise<CheckpointPointer> {
  let st;
  try {
    st = await fsp.stat(dir);
  } catch {
    throw new UsageError(`${flag}: ${dir} does not exist`);
  }
  if (!st.isDirectory())
    throw new UsageError(`${flag}: ${dir} is a file, expected a checkpoint folder (sbm train --out)`);
  const pointer = await readPointerFor(dir, flag);
  if (!pointer)
    throw new UsageError(`${flag}: ${dir} holds no checkpoint (no checkpoint.json; train one with sbm train)`);
  return pointer;
}
