import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSde } from '@sbm/sde';
import { MlpScoreModel } from '@sbm/models';
import { toy } from '@sbm/datasets';
import { FileCheckpointStorage, LOCK_FILE } from '@sbm/backend-node';
import { isSbmError, type SbmError } from '@sbm/core';
import { loadCheckpoint, train } from '@sbm/training';

// A real small tmpfs: a full disk and a read-only remount, as a user's machine meets them. Mounting needs root
// (CAP_SYS_ADMIN); elsewhere the suite is skipped, and EROFS / EACCES are covered with mocked fs calls in
// packages/backend-node/test/lock.test.ts. chmod cannot stand in: root ignores permission bits.
const mnt = mkdtempSync(join(tmpdir(), 'sbm-tmpfs-'));
let mounted = false;
let why = '';
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' });
  mounted = true;
} catch (e) {
  why = String((e as { stderr?: Buffer }).stderr ?? e).trim();
}
if (!mounted) console.warn(`disk-faults: skipped, cannot mount a tmpfs here (${why || 'not root'})`);

const storage = new FileCheckpointStorage();
const MLP = { name: 'mlp', inputDim: 2, hidden: [16, 16], embedding: { type: 'fourier', dim: 16, scale: 16 } } as const;
let x: tf.Tensor2D;

async function errorOf(p: Promise<unknown>): Promise<SbmError> {
  try {
    await p;
  } catch (e) {
    if (isSbmError(e)) return e;
    throw e;
  }
  throw new Error('expected an SbmError, got none');
}

async function run(location: string, steps: number, resume: boolean) {
  const model = new MlpScoreModel({ ...MLP, hidden: [...MLP.hidden] }, 3);
  try {
    const r = await train({
      model,
      sde: createSde('vp'),
      data: x,
      batchSize: 32,
      lr: 3e-3,
      warmup: 5,
      seed: 11,
      steps,
      resume,
      checkpoint: { storage, location, every: 100 },
    });
    r.ema.dispose();
  } finally {
    model.dispose();
  }
}

async function stepAt(location: string): Promise<number> {
  const ck = await loadCheckpoint(storage, location);
  tf.dispose([ck.optimizerState.m, ck.optimizerState.v]);
  ck.model.dispose();
  ck.ema.dispose();
  return ck.config.step;
}

function temporaries(d: string): string[] {
  return readdirSync(d, { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('.tmp'));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  x = toy('ring8', 256, 1);
});
afterAll(() => {
  x.dispose();
  if (mounted) execFileSync('umount', [mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

describe.skipIf(!mounted)('disk faults on a real 1 MiB tmpfs', () => {
  it('a full disk (ENOSPC) fails the save with IO_ERROR naming ENOSPC and leaves the earlier checkpoint readable', async () => {
    const loc = join(mnt, 'full');
    await run(loc, 3, false);
    const { bavail, bsize } = statfsSync(mnt);
    // Room for the lock and a few files of the next save, not for all of it.
    writeFileSync(join(mnt, 'filler'), Buffer.alloc(Math.max(0, bavail * bsize - 6 * 4096)));
    const tensors = tf.memory().numTensors;
    const e = await errorOf(run(loc, 6, true));
    expect(e.code).toBe('IO_ERROR');
    expect(e.details?.errno).toBe('ENOSPC');
    expect(e.message).toContain(loc);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(await stepAt(loc)).toBe(3);
    expect(temporaries(loc)).toEqual([]);
    expect(existsSync(join(loc, LOCK_FILE))).toBe(false);
    rmSync(join(mnt, 'filler'));
    await run(loc, 6, true);
    expect(await stepAt(loc)).toBe(6);
  });

  it('a read-only disk (EROFS) is IO_ERROR naming EROFS and the path, not ENOENT; loading still works', async () => {
    const loc = join(mnt, 'ro');
    await run(loc, 3, false);
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    try {
      const e = await errorOf(run(loc, 6, true));
      expect(e.code).toBe('IO_ERROR');
      expect(e.details?.errno).toBe('EROFS');
      expect(e.message).toMatch(/EROFS/);
      expect(e.message).toContain(loc);
      const w = await errorOf(storage.writeFile(loc, 'checkpoint.json', '{}'));
      expect([w.code, w.details?.errno]).toEqual(['IO_ERROR', 'EROFS']);
      expect(await stepAt(loc)).toBe(3);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
    }
  });
});
