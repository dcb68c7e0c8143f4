#!/usr/bin/env node
// Trains the noise-conditional MNIST classifier of @sbm/mnist-eval (class guidance for the tutorial-VE ScoreNet) and
// writes its weights as safetensors, with the test accuracy at each noise level in the metadata.
//
//   node tools/mnist-classifier/train-noisy.mjs [--epochs 3] [--seed 0] [--batch-size 64] [--lr 0.002]
//        [--out packages/mnist-eval/weights] [--max-steps N] [--backend wasm] [--sde-sigma 25] [--small-t-fraction 0.4]
//        [--test-limit N]
//
// Needs the built dists (cd packages/<pkg> && npx tsup) of core, wasm-kernels, backend-node, datasets,
// safetensors and mnist-eval. Same seed + backend ⇒ the same weights bit for bit (it prints their SHA-256).
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '@sbm/backend-node';
import { loadMnist } from '@sbm/datasets/node';
import { NOISY_PARAM_NAMES, loadNoisyClassifier, noisyAccuracyTable, trainNoisyClassifier } from '@sbm/mnist-eval';
import { intArg, writeWeights } from './common.mjs';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    seed: { type: 'string', default: '0' },
    'batch-size': { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.002' },
    out: { type: 'string', default: 'packages/mnist-eval/weights' },
    'max-steps': { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    'sde-sigma': { type: 'string', default: '25' },
    'test-limit': { type: 'string' },
    'small-t-fraction': { type: 'string', default: '0.4' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: node tools/mnist-classifier/train-noisy.mjs [--epochs 3] [--seed 0] [--batch-size 64] [--lr 0.002] ' +
      '[--out packages/mnist-eval/weights] [--max-steps N] [--backend wasm|cpu|tensorflow|webgpu|auto] ' +
      '[--sde-sigma 25] [--small-t-fraction 0.4] [--test-limit N]',
  );
  process.exit(0);
}
const int = (name) => intArg(args, name);
const epochs = int('epochs');
const seed = int('seed');
const batchSize = int('batch-size');
const learningRate = Number(args.lr);
const sdeSigma = Number(args['sde-sigma']);
const smallTFraction = Number(args['small-t-fraction']);
const maxSteps = args['max-steps'] === undefined ? undefined : int('max-steps');
const testLimit = args['test-limit'] === undefined ? undefined : int('test-limit');
// The noise levels of the README table: σ = 0 (clean) up to 25 (beyond std(1) ≈ 9.85 of the tutorial VE SDE,
// i.e. outside the training range: extrapolation, reported for completeness).
const SIGMAS = [0, 0.1, 0.5, 1, 2, 5, 10, 25];

const backend = await initBackend({ backend: args.backend });
const log = (...parts) => console.error('[mnist-noisy-classifier]', ...parts);

const train = await loadMnist({ split: 'train', range: [0, 1] });
const test = await loadMnist({ split: 'test', range: [0, 1], limit: testLimit });
log(
  `train ${train.count}, test ${test.count}; epochs ${epochs}, batch ${batchSize}, lr ${learningRate}, seed ${seed}, ` +
    `tutorial-ve sigma ${sdeSigma}, backend ${tf.getBackend()}`,
);

const started = Date.now();
const { classifier, steps, seconds, finalLoss } = await trainNoisyClassifier({
  images: train.images,
  labels: train.labels,
  sdeSigma,
  smallTFraction,
  epochs,
  batchSize,
  learningRate,
  seed,
  maxSteps,
  onProgress: ({ epoch, step, totalSteps, loss, seconds: s }) =>
    log(`epoch ${epoch} step ${step}/${totalSteps} loss ${loss.toFixed(4)} ${s.toFixed(1)} s`),
});
tf.dispose([train.images, train.labels]);

// Evaluated on the weights as written (float32: the round trip is exact, but this keeps it honest).
const draft = classifier.toSafetensors();
classifier.dispose();
const stored = loadNoisyClassifier(draft);
const evalStart = Date.now();
const rows = await noisyAccuracyTable(stored, test.images, test.labels, SIGMAS, { seed: 1 });
const evalSeconds = (Date.now() - evalStart) / 1000;
for (const r of rows) log(`sigma ${r.sigma}: test accuracy ${(100 * r.accuracy).toFixed(2)}% (n = ${r.n})`);
// [σ, accuracy] pairs, in the order of SIGMAS (an object would list "0.1" after the integer keys).
const accuracyBySigma = rows.map((r) => [r.sigma, Number(r.accuracy.toFixed(4))]);

const bytes = stored.toSafetensors({
  testAccuracyBySigma: JSON.stringify(accuracyBySigma),
  testN: String(test.count),
  evalNoiseSeed: '1',
  sde: 'tutorial-ve',
  sdeSigma: String(sdeSigma),
  tSampling: `t ~ U(1e-5, 1) per sample, a fraction ${smallTFraction} of them from U(1e-5, 0.1) instead`,
  seed: String(seed),
  epochs: String(epochs),
  steps: String(steps),
  batchSize: String(batchSize),
  learningRate: String(learningRate),
  schedule: 'adam, half-cosine decay to 0',
  inputRange: '[0, 1] + sigma * z',
  trainSeconds: seconds.toFixed(1),
  finalLoss: finalLoss.toFixed(4),
  backend: tf.getBackend(),
  backendReason: backend.reason,
  tfjsVersion: tf.version.tfjs,
  date: new Date(started).toISOString(),
  command: `node tools/mnist-classifier/train-noisy.mjs ${process.argv.slice(2).join(' ')}`.trim(),
});
stored.dispose();
tf.dispose([test.images, test.labels]);

const {
  file,
  sha256: sha,
  weightsSha256,
} = await writeWeights(args.out, 'noisy-classifier.safetensors', bytes, NOISY_PARAM_NAMES);
log(`wrote ${file} (${bytes.length} bytes, sha256 ${sha}, weights sha256 ${weightsSha256})`);
console.log(
  JSON.stringify({
    accuracyBySigma,
    testN: test.count,
    steps,
    trainSeconds: seconds,
    evalSeconds,
    finalLoss,
    bytes: bytes.length,
    sha256: sha,
    weightsSha256,
    file,
  }),
);
