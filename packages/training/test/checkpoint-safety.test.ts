import * as tf from '@tensorflow/tfjs';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlpScoreModel } from '@sbm/models';
import { toy } from '@sbm/datasets';
import { FileCheckpointStorage, LOCK_FILE } from '@sbm/backend-node';
import { isSbmError, type SbmError } from '@sbm/core';
import { configChecksum, loadCheckpoint, readPointer, train, type TrainOptions } from '@sbm/training';
import { smallVpRun, snapshot } from './helpers';

const MLP = { name: 'mlp', inputDim: 2, hidden: [16, 16], embedding: { type: 'fourier', dim: 16, scale: 16 } } as const;
const newModel = () => new MlpScoreModel({ ...MLP, hidden: [...MLP.hidden] }, 3);
const storage = new FileCheckpointStorage();

async function errorOf(p: Promise<unknown>): Promise<SbmError> {
  try {
    await p;
  } catch (e) {
    if (isSbmError(e)) return e;
    throw e;
  }
  throw new Error('expected an SbmError, got none');
}

let x: tf.Tensor2D;
let dir: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  x = toy('ring8', 256, 1);
  dir = mkdtempSync(join(tmpdir(), 'sbm-ckpt-safety-'));
});
afterAll(() => {
  x.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function opts(location: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  const { model, ...rest } = extra;
  return smallVpRun(model ?? newModel(), x, { checkpoint: { storage, location, every: 3 }, ...rest });
}

async function trainTo(location: string, steps: number, extra: Partial<TrainOptions> = {}) {
  const r = await train(opts(location, { steps, ...extra }));
  r.model.dispose();
  r.ema.dispose();
  return r;
}

function disposeLoaded(ck: Awaited<ReturnType<typeof loadCheckpoint>>): void {
  tf.dispose([ck.optimizerState.m, ck.optimizerState.v]);
  ck.model.dispose();
  ck.ema.dispose();
}

/** Every file under `root` with its bytes (the lock file excluded), to prove nothing was written. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name !== LOCK_FILE) out[p.slice(root.length)] = readFileSync(p).toString('base64');
    }
  };
  walk(root);
  return out;
}

describe('damaged pointer (checkpoint.json)', () => {
  const variants: [string, string][] = [
    ['empty', ''],
    ['truncated', '{"format":"sbm-checkpoint-pointer","formatVer'],
    ['not JSON', 'hello'],
    ['wrong schema', '{"format":"sbm-checkpoint-pointer","formatVersion":1,"slot":"slot-c","step":6}'],
    ['null', 'null'],
    [
      'malformed slots',
      '{"format":"sbm-checkpoint-pointer","formatVersion":1,"slot":"slot-b","step":6,"slots":{"slot-b":{"step":"6"}}}',
    ],
  ];
  it('is CORRUPT_CHECKPOINT for readPointer, loadCheckpoint and train (with and without resume); nothing is written', async () => {
    const loc = join(dir, 'pointer');
    await trainTo(loc, 6);
    const pointerPath = join(loc, 'checkpoint.json');
    for (const [label, text] of variants) {
      writeFileSync(pointerPath, text);
      const before = tree(loc);
      const tensors = tf.memory().numTensors;
      expect(`${label}: ${(await errorOf(readPointer(storage, loc))).code}`).toBe(`${label}: CORRUPT_CHECKPOINT`);
      const e = await errorOf(loadCheckpoint(storage, loc));
      expect(`${label}: ${e.code}`).toBe(`${label}: CORRUPT_CHECKPOINT`);
      expect(e.message).toContain('checkpoint.json');
      for (const resume of [true, false]) {
        const model = newModel();
        const err = await errorOf(train(opts(loc, { model, steps: 9, resume })));
        expect(`${label}, resume ${resume}: ${err.code}`).toBe(`${label}, resume ${resume}: CORRUPT_CHECKPOINT`);
        model.dispose();
      }
      expect(tree(loc)).toEqual(before);
      expect(existsSync(join(loc, LOCK_FILE))).toBe(false);
      expect(`${label}: ${tf.memory().numTensors}`).toBe(`${label}: ${tensors}`);
    }
  });
});

describe('slot fallback', () => {
  it('a damaged named slot falls back to the intact one and says so; resuming writes into the damaged slot only', async () => {
    const loc = join(dir, 'fallback');
    await trainTo(loc, 6); // slot-a: step 3, slot-b: step 6 (named)
    const pointer = (await readPointer(storage, loc))!;
    expect(pointer.slot).toBe('slot-b');
    expect(pointer.slots?.['slot-a']?.step).toBe(3);
    const damages: [string, () => void][] = [
      ['truncated model weights', () => truncateSync(join(loc, 'slot-b', 'model', 'weights.bin'), 10)],
      ['missing config.json', () => rmSync(join(loc, 'slot-b', 'config.json'))],
      ['config.json not JSON', () => writeFileSync(join(loc, 'slot-b', 'config.json'), '{"format": "sbm-tr')],
      ['missing ema folder', () => rmSync(join(loc, 'slot-b', 'ema'), { recursive: true })],
    ];
    const pristine = tree(loc);
    for (const [label, damage] of damages) {
      for (const [p, b64] of Object.entries(pristine)) writeFileSync(join(loc, p), Buffer.from(b64, 'base64'));
      damage();
      const tensors = tf.memory().numTensors;
      const ck = await loadCheckpoint(storage, loc);
      expect(`${label}: ${ck.slot} ${ck.config.step}`).toBe(`${label}: slot-a 3`);
      expect(ck.fellBackFrom).toMatchObject({ slot: 'slot-b', step: 6 });
      expect(ck.warnings[0]).toMatch(
        /slot-b \(step 6, named by checkpoint.json\) is damaged .*loaded slot-a \(step 3\) instead/,
      );
      disposeLoaded(ck);
      expect(tf.memory().numTensors).toBe(tensors);
      const strict = await errorOf(loadCheckpoint(storage, loc, { fallback: false }));
      expect(`${label}: ${strict.code}`).toBe(`${label}: CORRUPT_CHECKPOINT`);
    }
    // Resume after the last damage: the run continues from step 3, writes slot-b, never touches slot-a.
    const slotA = Object.fromEntries(Object.entries(tree(loc)).filter(([p]) => p.startsWith('/slot-a/')));
    const seen: string[] = [];
    const res = await train(
      opts(loc, {
        steps: 4,
        resume: true,
        checkpoint: { storage, location: loc, every: 100, onWarning: (w) => seen.push(w) },
      }),
    );
    expect(res.firstStep).toBe(3);
    expect(res.checkpoint).toBe(`${loc}/slot-b`);
    expect(seen.join('\n')).toContain('loaded slot-a (step 3) instead');
    expect(res.warnings).toEqual(seen);
    const after = tree(loc);
    for (const [p, b] of Object.entries(slotA)) expect(after[p]).toBe(b);
    // Resumed from the fallback, the run equals an uninterrupted one (weights bit for bit).
    const resumed = snapshot(res.model.getWeights());
    res.model.dispose();
    res.ema.dispose();
    const ref = await train({ ...opts(loc, { steps: 4 }), checkpoint: undefined });
    expect(resumed).toEqual(snapshot(ref.model.getWeights()));
    ref.model.dispose();
    ref.ema.dispose();
    const ck = await loadCheckpoint(storage, loc);
    expect(ck.fellBackFrom).toBeUndefined();
    expect([ck.slot, ck.config.step]).toEqual(['slot-b', 4]);
    disposeLoaded(ck);
  });

  it('when neither slot verifies: CORRUPT_CHECKPOINT naming both', async () => {
    const loc = join(dir, 'both');
    await trainTo(loc, 6);
    truncateSync(join(loc, 'slot-b', 'model', 'weights.bin'), 10);
    truncateSync(join(loc, 'slot-a', 'optimizer', 'weights.bin'), 10);
    const e = await errorOf(loadCheckpoint(storage, loc));
    expect(e.code).toBe('CORRUPT_CHECKPOINT');
    expect(e.message).toMatch(/slot-b.*the other slot, slot-a, cannot be used either.*optimizer/);
  });
});

describe('config checksum', () => {
  it('a hand-edited config.json is CORRUPT_CHECKPOINT naming the checksum; re-indenting it is not', async () => {
    const loc = join(dir, 'checksum');
    await trainTo(loc, 3, { checkpoint: { storage, location: loc, every: 100 } }); // one slot only
    const cfgPath = join(loc, 'slot-a', 'config.json');
    const text = readFileSync(cfgPath, 'utf8');
    const cfg = JSON.parse(text);
    expect((await readPointer(storage, loc))!.slots?.['slot-a']?.configCrc32).toBe(configChecksum(cfg));
    writeFileSync(cfgPath, JSON.stringify(cfg, null, 4));
    const ok = await loadCheckpoint(storage, loc);
    expect(ok.warnings).toEqual([]);
    disposeLoaded(ok);
    const edited = { ...cfg, sde: { ...cfg.sde, betaMax: 25 } };
    writeFileSync(cfgPath, JSON.stringify(edited, null, 1));
    const e = await errorOf(loadCheckpoint(storage, loc));
    expect(e.code).toBe('CORRUPT_CHECKPOINT');
    expect(e.message).toMatch(/slot-a\/config.json does not match the checksum in checkpoint.json .*edited or damaged/);
    writeFileSync(cfgPath, text);
  });

  it('a checkpoint without checksums (older pointer) still loads, with a note', async () => {
    const loc = join(dir, 'compat');
    await trainTo(loc, 3, { checkpoint: { storage, location: loc, every: 100 } });
    const ptrPath = join(loc, 'checkpoint.json');
    const { slots: _slots, ...old } = JSON.parse(readFileSync(ptrPath, 'utf8'));
    writeFileSync(ptrPath, JSON.stringify(old));
    const ck = await loadCheckpoint(storage, loc);
    expect(ck.config.step).toBe(3);
    expect(ck.warnings.join('\n')).toMatch(/carries no checksum .*its settings are not/);
    disposeLoaded(ck);
    // A resumed run upgrades it: the next pointer records the checksum.
    await trainTo(loc, 4, { resume: true });
    expect((await readPointer(storage, loc))!.slots?.['slot-b']).toBeDefined();
  });
});

describe('train() holds the writer lock', () => {
  it('LOCKED while another holder has the directory; checkpoint.lock passes a held lock; released at the end', async () => {
    const loc = join(dir, 'locked');
    const lock = await storage.lock(loc);
    const model = newModel();
    const e = await errorOf(train(opts(loc, { model, steps: 3 })));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toContain(`pid ${process.pid}`);
    expect(existsSync(join(loc, 'checkpoint.json'))).toBe(false);
    model.dispose();
    await trainTo(loc, 3, { checkpoint: { storage, location: loc, every: 100, lock } });
    expect(lock.held).toBe(true);
    expect(existsSync(join(loc, LOCK_FILE))).toBe(true);
    await lock.release();
    await trainTo(loc, 6, { resume: true });
    expect(existsSync(join(loc, LOCK_FILE))).toBe(false);
    const released = await storage.lock(loc);
    await released.release();
    const e2 = await errorOf(train(opts(loc, { steps: 6, checkpoint: { storage, location: loc, lock: released } })));
    expect(e2.code).toBe('INVALID_ARGUMENT');
    expect(e2.message).toMatch(/checkpoint.lock: expected a held lock .*released lock/);
  });

  it('removes orphan temporaries of an interrupted save at the next start and says so', async () => {
    const loc = join(dir, 'orphans');
    await trainTo(loc, 3);
    const orphan = join(loc, 'slot-b', 'model', '.weights.bin.0123456789ab.tmp');
    mkdirSync(join(loc, 'slot-b', 'model'), { recursive: true });
    writeFileSync(orphan, 'half a save');
    const res = await trainTo(loc, 6, { resume: true });
    expect(existsSync(orphan)).toBe(false);
    expect(res.warnings.join('\n')).toContain('removed 1 leftover temporary file(s) of an interrupted save');
  });
});
