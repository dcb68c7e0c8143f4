// Prints a CRC-32 of the float32 output bytes of every sampler, the likelihood, the losses and a short training run,
// each on a fixed seed, on cpu and wasm: run before and after a refactor (against the built packages) and diff the
// output to show that the same seed still gives bit-identical results. Usage: node tools/test-harness/scripts/fingerprints.mjs [backend...]
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@sbm/backend-node';
import { createSde } from '@sbm/sde';
import { sample } from '@sbm/samplers';
import { mixture2d } from '@sbm/gaussian-mixture';
import { logLikelihood } from '@sbm/likelihood';
import { dsmLoss } from '@sbm/losses';
import { modelFromConfig } from '@sbm/models';
import { train, crc32 } from '@sbm/training';

const hex = (u8) => crc32(u8).toString(16).padStart(8, '0');
async function crcOf(t) {
  const v = await t.data();
  return hex(new Uint8Array(new Float32Array(v).buffer));
}
const crcNums = (arr) => hex(new Uint8Array(Float64Array.from(arr).buffer));

const backends = process.argv.slice(2).length ? process.argv.slice(2) : ['cpu', 'wasm'];
for (const b of backends) {
  await initBackend({ backend: b });
  const gm = mixture2d();
  const runs = [
    ['pc', { steps: 40 }],
    ['pc', { steps: 30, predictor: 'euler-maruyama', corrector: 'ald' }],
    ['pc', { steps: 30, predictor: 'ancestral', corrector: 'none' }],
    ['em', { steps: 40 }],
    ['ode', {}],
    ['dpm-solver', { steps: 10 }],
    ['heun', { steps: 8 }],
  ];
  for (const sdeName of ['vp', 've', 'subvp']) {
    const sde = createSde(sdeName);
    const pm = gm.perturbed(sde);
    const score = (x, t) => pm.score(x, t);
    for (const [sampler, extra] of runs) {
      if (sampler === 'pc' && extra.predictor === 'ancestral' && sdeName === 'subvp') continue;
      const r = await sample({ sampler, sde, score, shape: [64, 2], seed: 7, ...extra });
      console.log(
        JSON.stringify({ backend: b, sde: sdeName, sampler, ...extra, nfe: r.stats.nfe, crc: await crcOf(r.samples) }),
      );
      r.samples.dispose();
    }
    const x = gm.sample(16, 3);
    const ll = await logLikelihood(score, x, sde, 5, { divergence: 'exact' });
    console.log(JSON.stringify({ backend: b, sde: sdeName, what: 'nll-exact', crc: crcNums(ll.nll) }));
    const ll2 = await logLikelihood(score, x, sde, 5);
    console.log(JSON.stringify({ backend: b, sde: sdeName, what: 'nll-rademacher', crc: crcNums(ll2.nll) }));
    const l = tf.tidy(() => dsmLoss(score, x, sde, 9));
    console.log(JSON.stringify({ backend: b, sde: sdeName, what: 'dsm', crc: await crcOf(l) }));
    l.dispose();
    x.dispose();
  }
  for (const sampler of ['ald', 'langevin']) {
    const sc = (x, sigma) => tf.tidy(() => tf.neg(tf.div(x, tf.add(1, tf.square(sigma)).reshape([-1, 1]))));
    const opts = sampler === 'ald' ? { sigmas: [1, 0.5, 0.1], stepsPerLevel: 10 } : { sigma: 0.1, steps: 20 };
    const r = await sample({ sampler, score: sc, shape: [32, 2], seed: 4, ...opts }).catch((e) => ({
      error: e.message,
    }));
    if (r.error) console.log(JSON.stringify({ backend: b, sampler, error: r.error }));
    else {
      console.log(JSON.stringify({ backend: b, sampler, crc: await crcOf(r.samples) }));
      r.samples.dispose();
    }
  }
  const sde = createSde('vp');
  const model = modelFromConfig({ name: 'mlp', inputDim: 2, hidden: [32, 32] }, { seed: 1 });
  const data = gm.sample(256, 11);
  await train({ model, sde, data, steps: 20, batchSize: 32, lr: 1e-3, warmup: 5, seed: 3 });
  const w = model.getWeights ? model.getWeights() : [];
  const flat = [];
  for (const t of w) flat.push(...(await (t.tensor ?? t).data()));
  console.log(JSON.stringify({ backend: b, what: 'train-mlp-20', crc: crcNums(flat) }));
  data.dispose();
}
