// Float16 against float32 storage of a demo model file: both files (`sbm export safetensors --dtype float16` and
// `--dtype float32` of one checkpoint) sample the same 64 digits (same seed, the Digits panel's default sampler:
// DPM-Solver++(3M) SDE, 19 steps + Tweedie's denoiser = 20 NFE), judged by the shipped clean classifier. Prints one
// JSON line: mean confidence of each, how many digits get the same class, mean |Δ pixel|.
//   node apps/demo/scripts/compare-f16.mjs F16.safetensors F32.safetensors [--n 64] [--seed 0]
// Needs the packages built (npm run build); runs on wasm through @sbm/backend-node.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@sbm/backend-node';
import { loadSbmModel } from '@sbm/interop';
import { createSde } from '@sbm/sde';
import { createScoreFn } from '@sbm/models';
import { sample } from '@sbm/samplers';
import { loadDefaultClassifier } from '@sbm/mnist-eval/node';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : Number(args[i + 1]);
};
const files = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
if (files.length !== 2) {
  console.error('usage: node apps/demo/scripts/compare-f16.mjs F16.safetensors F32.safetensors [--n 64] [--seed 0]');
  process.exit(2);
}
const n = flag('--n', 64);
const seed = flag('--seed', 0);
await initBackend({ backend: 'wasm' });
const clf = await loadDefaultClassifier();

async function draw(file) {
  const { model, sde: sdeConfig, metadata } = loadSbmModel(new Uint8Array(readFileSync(file)));
  const sde = createSde(sdeConfig);
  const res = await sample({
    sampler: 'dpmpp-3m-sde',
    steps: 19,
    denoiseToZero: true,
    sde,
    score: createScoreFn(model, sde),
    shape: [n, 28, 28, 1],
    seed,
  });
  const x = tf.tidy(() => tf.clipByValue(res.samples, 0, 1));
  res.samples.dispose();
  model.dispose();
  const { probs, classes } = await clf.predict(x);
  const p = await probs.array();
  const c = Array.from(await classes.data());
  const v = await x.data();
  tf.dispose([probs, classes, x]);
  return { step: metadata.step, dtype: metadata.dtype, conf: p.map((r) => Math.max(...r)), classes: c, pixels: v };
}

const [a, b] = [await draw(files[0]), await draw(files[1])];
const mean = (v) => v.reduce((s, e) => s + e, 0) / v.length;
let d = 0;
for (let i = 0; i < a.pixels.length; i++) d += Math.abs(a.pixels[i] - b.pixels[i]);
console.log(
  JSON.stringify({
    n,
    seed,
    step: a.step,
    dtypes: [a.dtype, b.dtype],
    confidence: [Number(mean(a.conf).toFixed(4)), Number(mean(b.conf).toFixed(4))],
    sameClass: a.classes.filter((c, i) => c === b.classes[i]).length,
    meanAbsPixelDiff: Number((d / a.pixels.length).toFixed(5)),
  }),
);
clf.dispose?.();
