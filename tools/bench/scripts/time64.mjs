// `node tools/bench/scripts/time64.mjs CKPT_DIR [sampler@steps ...]`: wall time of one grid of 64 MNIST samples
// (batch 64, EMA weights, --denoise-to-zero ending) per sampler on the default backend, after a warm-up batch of 8, median of three —
// what a user waits for `sbm sample --n 64`. One JSON line per sampler. Needs the built dists.
import * as tf from '@tensorflow/tfjs';
const [dir, ...cases] = process.argv.slice(2);
const backend = await import('@sbm/backend-node');
const training = await import('@sbm/training');
const models = await import('@sbm/models');
const samplers = await import('@sbm/samplers');
const sdeLib = await import('@sbm/sde');
const b = await backend.initBackend();
const { model, ema, config } = await training.loadCheckpoint(new backend.FileCheckpointStorage(), dir);
ema.copyTo(model);
const sde = sdeLib.createSde(config.sde);
const score = models.createScoreFn(model, sde);
for (const c of cases.length ? cases : ['unipc@19']) {
  const [sampler, steps] = c.split('@');
  const opts = { sampler, steps: Number(steps), denoiseToZero: true, sde, score, seed: 0 };
  const warm = await samplers.sample({ ...opts, shape: [8, 28, 28, 1] });
  warm.samples.dispose();
  // Three timed grids: the median is the figure, all three are printed (the machine is noisy).
  const runs = [];
  let nfe = 0;
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    const r = await samplers.sample({ ...opts, shape: [64, 28, 28, 1], seed: k });
    await r.samples.data();
    runs.push(Math.round(performance.now() - t0) / 1000);
    nfe = r.stats.nfe;
    r.samples.dispose();
  }
  const seconds = [...runs].sort((a, b) => a - b)[1];
  console.log(JSON.stringify({ suite: 'time64', sampler: c, backend: b.name, step: config.step, nfe, seconds, runs }));
}
tf.disposeVariables();
