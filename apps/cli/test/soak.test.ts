import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileCheckpointStorage } from '@sbm/backend-node';
import { readCheckpoint } from '@sbm/training';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildStaleDist,
  checkpointCrc,
  Child,
  fineProgressEnv,
  readPointerFile,
  sbmAsync,
  seededRandom,
  moonsTrainArgs,
} from './helpers';

// Issue 11's soak test: 50 kill -9 / SIGTERM moments, drawn from a seeded schedule (SBM_SOAK_SEED reproduces a
// failure), during one 2-D training run with checkpoints every 50 steps, each followed by a restart with
// --resume-or-start. After every kill the directory must load (CRC-checked, no slot fallback); in the end the
// weights must equal an uninterrupted run's bit for bit.
const SEED = Number(process.env.SBM_SOAK_SEED ?? 11);
const KILLS = 50;
const TOTAL = 1500;
const EVERY = 50;
const tmp = mkdtempSync(join(tmpdir(), 'sbm-cli-soak-'));
const small = join(tmp, 'small.json');
const args = (out: string) =>
  moonsTrainArgs(small, out, TOTAL, ['--warmup', '10', '--ckpt-every', String(EVERY), '--resume-or-start']);

beforeAll(() => {
  buildStaleDist();
  writeFileSync(small, JSON.stringify({ model: { hidden: [16, 16] } }));
}, 600_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every file whose name marks an unfinished atomic write, under `dir`. */
function temporaries(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tmp'));
}

describe(`soak: ${KILLS} kill -9 / SIGTERM moments during one training run (seed ${SEED})`, () => {
  it('the directory loads after every kill and the final weights equal the uninterrupted run (CRC)', async () => {
    const t0 = Date.now();
    const reference = join(tmp, 'reference');
    const out = join(tmp, 'soak');
    // The reference trains meanwhile: most of a soak cycle is a process starting up, which leaves a core free.
    const ref = sbmAsync(args(reference), { cwd: tmp, timeout: 600_000 });
    const rand = seededRandom(SEED);
    const storage = new FileCheckpointStorage();
    const log: string[] = [];
    let last = -1;
    let kills = 0;
    for (let i = 0; i < KILLS; i++) {
      const kind = rand() < 0.5 ? 'SIGKILL' : 'SIGTERM';
      const at = readPointerFile(out)?.step ?? 0;
      const r = rand();
      // 15 %: a moment during start-up (imports, backend, resume); otherwise a step ahead, 1 in 4 of those exactly
      // on a checkpoint step (the kill then meets the save). Never the last step, so every cycle is a kill.
      let moment: string;
      const child = new Child(args(out), { cwd: tmp, env: fineProgressEnv, timeout: 120_000 });
      if (r < 0.15) {
        // From 200 ms: before that Node itself is starting and no JavaScript can handle a signal yet.
        const ms = 200 + Math.floor(rand() * 1300);
        moment = `${ms} ms after start`;
        await Promise.race([new Promise((res) => setTimeout(res, ms)), child.exited]);
      } else {
        let target = at + 1 + Math.floor(rand() * 60);
        if (rand() < 0.25) target = Math.ceil(target / EVERY) * EVERY;
        target = Math.min(target, TOTAL - 1);
        moment = `step ${target}`;
        await child.untilStep(target);
      }
      child.proc.kill(kind);
      const res = await child.exited;
      // A kill -9 ends it by the signal, SIGTERM with the documented code (also during start-up).
      if (kind === 'SIGKILL') expect(res.signal, res.stderr).toBe('SIGKILL');
      else expect(res.code, res.stderr).toBe(143);
      kills += 1;
      const ptr = readPointerFile(out);
      if (ptr) {
        const data = await readCheckpoint(storage, out);
        try {
          expect(data.config.step).toBe(ptr.step);
          expect((data as { fellBackFrom?: unknown }).fellBackFrom).toBeUndefined();
        } finally {
          tf.dispose([data.model, data.ema, data.optimizer.m, data.optimizer.v]);
        }
      }
      const step = ptr?.step ?? -1;
      // Work is never lost beyond the last checkpoint: the saved step never goes back.
      expect(step).toBeGreaterThanOrEqual(last);
      last = step;
      log.push(`${i}: ${kind} at ${moment} → checkpoint step ${step}`);
    }
    expect(kills).toBe(KILLS);
    expect(tf.memory().numTensors).toBe(0);
    const final = await sbmAsync(args(out), { cwd: tmp, timeout: 300_000 });
    expect(final.code, final.stderr).toBe(0);
    const refResult = await ref;
    expect(refResult.code, refResult.stderr).toBe(0);
    expect(checkpointCrc(out)).toEqual(checkpointCrc(reference));
    expect(checkpointCrc(out).step).toBe(TOTAL);
    // The last start removed what interrupted saves left behind, and the lock went with the last process.
    expect(temporaries(out)).toEqual([]);
    expect(existsSync(join(out, 'sbm.lock'))).toBe(false);
    console.log(`soak (seed ${SEED}): ${KILLS} kills in ${((Date.now() - t0) / 1000).toFixed(0)} s\n${log.join('\n')}`);
  }, 900_000);
});
