import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { createSde } from '@sbm/sde';
import { MlpScoreModel } from '@sbm/models';
import { toy } from '@sbm/datasets';
import { FileCheckpointStorage } from '@sbm/backend-node';
import { SeedStream } from '@sbm/core';
import { loadCheckpoint, train } from '@sbm/training';
import { isSbmError } from '@sbm/core';
import { snapshot } from './helpers';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
// Inside the repository so that the bundle's external imports (@tensorflow/tfjs) resolve from node_modules.
const outDir = join(root, 'node_modules', '.cache', 'sbm-training-test');
const bundle = join(outDir, 'train-child.mjs');
let dir: string;

beforeAll(async () => {
  mkdirSync(outDir, { recursive: true });
  // The fixture imports the workspace packages' sources (no build needed); everything else stays external.
  await build({
    entryPoints: [join(here, 'fixtures', 'train-child.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    plugins: [
      {
        name: 'sbm-sources',
        setup(b) {
          b.onResolve({ filter: /^@sbm\/[^/]+$/ }, (a) => ({
            path: join(root, 'packages', a.path.slice(5), 'src', 'index.ts'),
          }));
          b.onResolve({ filter: /^[^./]/ }, (a) =>
            a.path.startsWith('@sbm/') ? undefined : { path: a.path, external: true },
          );
        },
      },
    ],
  });
  dir = mkdtempSync(join(tmpdir(), 'sbm-sigkill-'));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the child; resolves with its last printed step. With `killAfter`, SIGKILLs it once it has printed that step. */
function runChild(
  location: string,
  steps: number,
  killAfter?: number,
  delayMs = 0,
): Promise<{ last: number; killed: boolean }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [bundle, location, String(steps)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = 0;
    let buf = '';
    let err = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const m of buf.matchAll(/step (\d+)\n/g)) last = Number(m[1]);
      buf = buf.slice(buf.lastIndexOf('\n') + 1);
      if (killAfter !== undefined && last >= killAfter && !sent) {
        sent = true;
        // A random delay lands the kill anywhere in the next step or checkpoint write.
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolvePromise({ last, killed: true });
      else if (code === 0) resolvePromise({ last, killed: false });
      else reject(new Error(`child exited with ${code}: ${err}`));
    });
  });
}

describe('SIGKILL during training (cpu, child process)', () => {
  it('leaves a loadable checkpoint every time, and resuming reaches the uninterrupted result bit for bit', async () => {
    const storage = new FileCheckpointStorage();
    const loc = join(dir, 'run');
    const total = 40;
    const rng = new SeedStream(2026);
    let previous = 0;
    for (const killAfter of [6, 14, 22, 30]) {
      const delay = Math.floor(rng.uniform() * 15);
      const r = await runChild(loc, total, killAfter, delay);
      expect(r.killed).toBe(true);
      const ck = await loadCheckpoint(storage, loc);
      // Saved after every step: the checkpoint is the last step printed or one step further (killed after the
      // save but before printing), never older than the previous checkpoint.
      expect(ck.config.step).toBeGreaterThanOrEqual(Math.max(previous, r.last - 1));
      expect(ck.config.step).toBeLessThanOrEqual(r.last + 1);
      previous = ck.config.step;
      tf.dispose([ck.optimizerState.m, ck.optimizerState.v]);
      ck.model.dispose();
      ck.ema.dispose();
    }
    const done = await runChild(loc, total);
    expect(done.killed).toBe(false);
    const final = await loadCheckpoint(storage, loc);
    expect(final.config.step).toBe(total);

    // The same run without interruption, in this process (same cpu backend and code).
    await tf.setBackend('cpu');
    const x = toy('ring8', 512, 1);
    const model = new MlpScoreModel(
      { name: 'mlp', inputDim: 2, hidden: [16, 16], embedding: { type: 'fourier', dim: 16, scale: 16 } },
      3,
    );
    const ref = await train({
      model,
      sde: createSde('vp'),
      data: x,
      batchSize: 32,
      lr: 3e-3,
      warmup: 5,
      seed: 11,
      steps: total,
    });
    expect(snapshot(final.model.getWeights())).toEqual(snapshot(ref.model.getWeights()));
    expect(snapshot(final.ema.getWeights())).toEqual(snapshot(ref.ema.getWeights()));
    tf.dispose([final.optimizerState.m, final.optimizerState.v, x]);
    for (const o of [final.model, final.ema, ref.model, ref.ema]) o.dispose();
  }, 120_000);

  it('a second writer is LOCKED naming the training child; once the child is killed, its stale lock is taken over', async () => {
    const loc = join(dir, 'locked-run');
    const child = spawn(process.execPath, [bundle, loc, '100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
    await new Promise<void>((r) => {
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (/step 2\n/.test(buf)) r();
      });
    });
    await tf.setBackend('cpu');
    const x2 = toy('ring8', 512, 1);
    const storage = new FileCheckpointStorage();
    const options = () => ({
      model: new MlpScoreModel(
        { name: 'mlp', inputDim: 2, hidden: [16, 16], embedding: { type: 'fourier', dim: 16, scale: 16 } },
        3,
      ),
      sde: createSde('vp'),
      data: x2,
      batchSize: 32,
      lr: 3e-3,
      warmup: 5,
      seed: 11,
      resume: true,
      checkpoint: { storage, location: loc, every: 1 },
    });
    const first = options();
    let err: unknown;
    try {
      await train({ ...first, steps: 100000 });
    } catch (e) {
      err = e;
    }
    first.model.dispose();
    expect(isSbmError(err, 'LOCKED')).toBe(true);
    expect((err as Error).message).toContain(`pid ${child.pid} on `);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const second = options();
    const before = await loadCheckpoint(storage, loc);
    const killedAt = before.config.step;
    tf.dispose([before.optimizerState.m, before.optimizerState.v]);
    before.model.dispose();
    before.ema.dispose();
    const res = await train({ ...second, steps: killedAt + 2 });
    expect(res.firstStep).toBe(killedAt);
    expect(res.warnings.join('\n')).toMatch(new RegExp(`took over a stale lock of pid ${child.pid} `));
    res.model.dispose();
    res.ema.dispose();
    x2.dispose();
  }, 120_000);
});
