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
});
