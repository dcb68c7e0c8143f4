#!/usr/bin/env node
// Trains the MNIST classifier shipped in @sbm/mnist-eval and writes its weights as safetensors with metadata.
//
//   node tools/mnist-classifier/train.mjs [--epochs 3] [--seed 0] [--batch-size 128] [--lr 0.002]
//                                         [--out packages/mnist-eval/weights] [--max-steps N] [--backend wasm]
//
// Needs the built dists (cd packages/<pkg> && npx tsup) of core, wasm-kernels, backend-node, datasets,
// safetensors, gaussian-mixture and mnist-eval. Runs on @sbm/backend-node's backend (wasm by default here:
// 2 threads and sbm's gradient kernels). Same seed + backend ⇒ the same weights bit for bit (the script prints
// their SHA-256).
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '@sbm/backend-node';
import { loadMnist } from '@sbm/datasets/node';
import { PARAM_NAMES, trainClassifier } from '@sbm/mnist-eval';
import { intArg, writeWeights } from './common.mjs';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    seed: { type: 'string', default: '0' },
    'batch-size': { type: 'string', default: '128' },
    lr: { type: 'string', default: '0.002' },
    out: { type: 'string', default: 'packages/mnist-eval/weights' },
    'max-steps': { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: node tools/mnist-classifier/train.mjs [--epochs 3] [--seed 0] [--batch-size 128] [--lr 0.002] ' +
      '[--out packages/mnist-eval/weights] [--max-steps N] [--backend wasm|cpu|tensorflow|webgpu|auto]',
  );
  process.exit(0);
}
const int = (name) => intArg(args, name);
const epochs = int('epochs');
const seed = int('seed');
const batchSize = int('batch-size');
const learningRate = Number(args.lr);
const maxSteps = args['max-steps'] === undefined ? undefined : int('max-steps');

const backend = await initBackend({ backend: args.backend });
const log = (...parts) => console.error('[mnist-classifier]', ...parts);

const train = await loadMnist({ split: 'train', range: [0, 1] });
const test = await loadMnist({ split: 'test', range: [0, 1] });
log(`train ${train.count}, test ${test.count}; epochs ${epochs}, batch ${batchSize}, lr ${learningRate}, seed ${seed}`);

const started = Date.now();
const { classifier, steps, seconds, finalLoss } = await trainClassifier({
  images: train.images,
  labels: train.labels,
  epochs,
  batchSize,
  learningRate,
  seed,
  maxSteps,
  onProgress: ({ epoch, step, totalSteps, loss, seconds: s }) =>
    log(`epoch ${epoch} step ${step}/${totalSteps} loss ${loss.toFixed(4)} ${s.toFixed(1)} s`),
});

const { classes } = await classifier.predict(test.images);
const correct = tf.tidy(() => tf.sum(tf.cast(tf.equal(classes, test.labels), 'int32')));
const accuracy = (await correct.data())[0] / test.count;
tf.dispose([classes, correct]);
log(`test accuracy ${(100 * accuracy).toFixed(2)}% after ${steps} steps, ${seconds.toFixed(1)} s of training`);

const bytes = classifier.toSafetensors({
  testAccuracy: accuracy.toFixed(4),
  seed: String(seed),
  epochs: String(epochs),
  steps: String(steps),
  batchSize: String(batchSize),
  learningRate: String(learningRate),
  schedule: 'adam, half-cosine decay to 0',
  inputRange: '[0, 1]',
  trainSeconds: seconds.toFixed(1),
  backend: tf.getBackend(),
  backendReason: backend.reason,
  tfjsVersion: tf.version.tfjs,
  date: new Date(started).toISOString(),
  command: `node tools/mnist-classifier/train.mjs ${process.argv.slice(2).join(' ')}`.trim(),
});
classifier.dispose();
tf.dispose([train.images, train.labels, test.images, test.labels]);

const { file, sha256: sha, weightsSha256 } = await writeWeights(args.out, 'classifier.safetensors', bytes, PARAM_NAMES);
log(`wrote ${file} (${bytes.length} bytes, sha256 ${sha}, weights sha256 ${weightsSha256})`);
console.log(
  JSON.stringify({
    accuracy,
    steps,
    trainSeconds: seconds,
    finalLoss,
    bytes: bytes.length,
    sha256: sha,
    weightsSha256,
    file,
  }),
);
