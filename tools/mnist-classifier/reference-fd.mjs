#!/usr/bin/env node
// Reference figures for MNIST-FD with the shipped classifier (the table in packages/mnist-eval/README.md):
//
//   node tools/mnist-classifier/reference-fd.mjs [--n 5000] [--backend wasm]
//
// Prints one JSON object per comparison. Inference only; needs the built dists (see train.mjs).
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '@sbm/backend-node';
import { loadMnist } from '@sbm/datasets/node';
import { featureStatistics, loadDefaultClassifier, mnistQuality } from '@sbm/mnist-eval/node';

const { values: args } = parseArgs({
  options: { n: { type: 'string', default: '5000' }, backend: { type: 'string', default: 'wasm' } },
});
const n = Number(args.n);
if (!Number.isSafeInteger(n) || n < 2 || n > 5000)
  throw new Error(`--n: expected an integer in [2, 5000], got ${args.n}`);
await initBackend({ backend: args.backend });
const classifier = await loadDefaultClassifier();
const test = await loadMnist({ split: 'test', range: [0, 1] });
const train = await loadMnist({ split: 'train', range: [0, 1], limit: n });
const labels = await test.labels.data();

// Reference = the even-indexed test digits, samples from the odd-indexed ones: both halves mix the test set's two
// writer populations (LeCun et al.: the first 5000 test digits come from NIST's cleaner training pool, the last 5000
// from its harder test pool), so "same distribution" really is the same distribution. n ≤ 5000.
const even = tf.tensor1d(
  Array.from({ length: n }, (_, i) => 2 * i),
  'int32',
);
const odd = tf.tensor1d(
  Array.from({ length: n }, (_, i) => 2 * i + 1),
  'int32',
);
const testA = tf.gather(test.images, even);
const testB = tf.gather(test.images, odd);
const oddLabels = Array.from({ length: n }, (_, i) => labels[2 * i + 1]);
const ref = await featureStatistics(classifier, testA);
const pick = (keep) => {
  const idx = [];
  for (let i = 0; idx.length < n; i = (i + 1) % n) if (keep(oddLabels[i])) idx.push(i);
  return tf.tidy(() => tf.gather(testB, tf.tensor1d(idx, 'int32')));
};

const sets = {
  'test, odd indices (same distribution)': () => tf.clone(testB),
  'train[0:n]': () => tf.clone(train.images),
  'test B + N(0, 0.1²) noise, clipped': () =>
    tf.tidy(() => tf.clipByValue(tf.add(testB, tf.randomNormal(testB.shape, 0, 0.1, 'float32', 1)), 0, 1)),
  'test B + N(0, 0.3²) noise, clipped': () =>
    tf.tidy(() => tf.clipByValue(tf.add(testB, tf.randomNormal(testB.shape, 0, 0.3, 'float32', 2)), 0, 1)),
  'test B blurred (3×3 box)': () => tf.tidy(() => tf.avgPool(testB, 3, 1, 'same')),
  'test B digits 0-4 only (half the classes)': () => pick((y) => y < 5),
  'test B digit 1 only': () => pick((y) => y === 1),
  'uniform noise U(0, 1)': () => tf.randomUniform([n, 28, 28, 1], 0, 1, 'float32', 3),
  'blank (all 0)': () => tf.zeros([n, 28, 28, 1]),
};

for (const [name, make] of Object.entries(sets)) {
  const x = make();
  const q = await mnistQuality(x, ref, { classifier });
  x.dispose();
  console.log(
    JSON.stringify({
      samples: name,
      reference: `test, even indices (${n})`,
      n,
      fd: Number(q.fd.toFixed(3)),
      meanMaxProb: Number(q.meanMaxProb.toFixed(4)),
      classesCovered: q.classesCovered,
      classCounts: q.classCounts,
    }),
  );
}
// The known shift inside the test set: its first 5000 digits against its last 5000.
{
  const first = tf.slice(test.images, [0, 0, 0, 0], [5000, 28, 28, 1]);
  const last = tf.slice(test.images, [5000, 0, 0, 0], [5000, 28, 28, 1]);
  const q = await mnistQuality(last, first, { classifier });
  tf.dispose([first, last]);
  console.log(
    JSON.stringify({ samples: 'test[5000:10000]', reference: 'test[0:5000]', n: 5000, fd: Number(q.fd.toFixed(3)) }),
  );
}
tf.dispose([even, odd, testA, testB, test.images, test.labels, train.images, train.labels]);
classifier.dispose();
