// PyTorch at 1 and 2 threads in the same run, and the ratio against the faster of the two (issue 16, "honest
// benches"). Why both: on this project's 2-core machine, with other processes on the cores, torch's OpenMP workers
// spin-wait for each other, and one thread was measured 2–3× faster than two for the ScoreNet step (230 ms vs
// 640 ms); dividing by the 2-thread figure alone made sbm look 2.5× closer to PyTorch than it is.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The thread counts every PyTorch comparison times, in this order. */
export const TORCH_THREADS = [1, 2];

/** The reason every bench prints when the PyTorch columns are empty. */
export const NO_TORCH = 'no python with torch (Debian: apt-get install -y python3-torch); PyTorch columns are null';

/**
 * The faster of the per-thread-count times: `{ ms, threads }`, or nulls when none was measured.
 * `byThreads` maps a thread count to a time in ms (null/undefined = not measured).
 */
export function bestOf(byThreads) {
  let best = { ms: null, threads: null };
  for (const [threads, ms] of Object.entries(byThreads)) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) continue;
    if (best.ms === null || ms < best.ms) best = { ms, threads: Number(threads) };
  }
  return best;
}

/**
 * Times the PyTorch ScoreNet training step (tools/bench/lib/torch_train_scorenet.py: the tutorial ScoreNet,
 * 1,115,297 trainable parameters like sbm's, tutorial DSM loss, backward, clip 1.0, Adam, EMA) once per thread
 * count in TORCH_THREADS, each in its own process (torch.set_num_threads is process-wide).
 * Returns `{ byThreads: { 1: {msPerStep, minMs}, 2: {...} }, errors: [] }`.
 */
export function torchScoreNetStep(torch, { batch = 64, steps = 10, warmup = 3, log = () => {} } = {}) {
  const byThreads = {};
  const errors = [];
  for (const threads of TORCH_THREADS) {
    const r = spawnSync(
      torch.python,
      [join(here, 'torch_train_scorenet.py'), String(batch), String(steps), String(warmup), String(threads)],
      { encoding: 'utf8' },
    );
    if (r.status === 0) {
      const out = JSON.parse(r.stdout.trim());
      if (out.threads !== threads) errors.push(`asked torch for ${threads} thread(s), it reports ${out.threads}`);
      byThreads[threads] = { msPerStep: out.msPerStep, minMs: out.minMs };
      log(`torch ${threads} thread(s): ${out.msPerStep.toFixed(1)} ms/step (min ${out.minMs.toFixed(1)})`);
    } else {
      byThreads[threads] = null;
      errors.push(`torch at ${threads} thread(s) failed: ${r.stderr.slice(-300)}`);
    }
  }
  return { byThreads, errors };
}
