import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { readPointer } from '@sbm/training';
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

export async function readRunFile(dir: string): Promise<RunFile | undefined> {
  try {
    const parsed = JSON.parse(await fsp.readFile(join(dir, RUN_FILE), 'utf8')) as RunFile;
    return parsed?.format === 'sbm-cli-run' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export async function writeRunFile(dir: string, run: Omit<RunFile, 'format'>): Promise<void> {
  await writeJsonAtomic(join(dir, RUN_FILE), { format: 'sbm-cli-run', ...run });
}

/** Fails with one line when `dir` holds no sbm checkpoint (before any backend or tensor work starts). */
export async function requireCheckpoint(dir: string, flag = '--ckpt'): Promise<void> {
  let st;
  try {
    st = await fsp.stat(dir);
  } catch {
    throw new UsageError(`${flag}: ${dir} does not exist`);
  }
  if (!st.isDirectory())
    throw new UsageError(`${flag}: ${dir} is a file, expected a checkpoint folder (sbm train --out)`);
  const pointer = await readPointer(storage, dir).catch(() => undefined);
  if (!pointer)
    throw new UsageError(`${flag}: ${dir} holds no checkpoint (no checkpoint.json; train one with sbm train)`);
}
