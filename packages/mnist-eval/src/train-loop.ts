import * as tf from '@tensorflow/tfjs';
import { now, yieldToEventLoop } from '@sbm/core';
import type { Batcher } from '@sbm/datasets';

export interface TrainProgress {
  epoch: number;
  step: number;
  totalSteps: number;
  loss: number;
  seconds: number;
}

export interface AdamCosineLoopOptions {
  /** Initial values, one per name of `paramNames` (disposed here once copied into variables). */
  init: Record<string, tf.Tensor>;
  paramNames: readonly string[];
  /** Variables are named `${variablePrefix}${name}`. */
  variablePrefix: string;
  batcher: Batcher;
  epochs: number;
  totalSteps: number;
  learningRate: number;
  logEvery: number;
  /** Called once per step, outside the optimizer, with the batch's indices; returns the loss closure to minimize. */
  makeLoss: (vars: Record<string, tf.Variable>, idx: tf.Tensor1D) => () => tf.Scalar;
  onProgress?: (p: TrainProgress) => void;
}

/**
 * The training loop shared by trainClassifier and trainNoisyClassifier: Adam (Kingma & Ba 2015) with a half-cosine
 * decay of the step size from `learningRate` to 0 (Loshchilov & Hutter 2017, eq. 5 without restarts), over the
 * Batcher's epoch orders, stopping after `totalSteps`. Returns clones of the trained parameters.
 */
export async function adamCosineLoop(
  o: AdamCosineLoopOptions,
): Promise<{ params: Record<string, tf.Tensor>; steps: number; seconds: number; finalLoss: number }> {
  const { batcher, epochs, totalSteps, learningRate: lr, logEvery } = o;
  const vars: Record<string, tf.Variable> = {};
  for (const name of o.paramNames) vars[name] = tf.variable(o.init[name], true, `${o.variablePrefix}${name}`);
  tf.dispose(Object.values(o.init));
  const varList = o.paramNames.map((n) => vars[n]);
  const optimizer = tf.train.adam(lr);
  // AdamOptimizer reads its step size on every applyGradients; tfjs has no schedule API, so it is set per step.
  const mutable = optimizer as unknown as { learningRate: number };
  const t0 = now();
  let step = 0;
  let finalLoss = NaN;
  try {
    for (let epoch = 0; epoch < epochs && step < totalSteps; epoch++) {
      for (let s = 0; s < batcher.stepsPerEpoch && step < totalSteps; s++) {
        mutable.learningRate = 0.5 * lr * (1 + Math.cos((Math.PI * step) / totalSteps));
        const idx = tf.tensor1d(batcher.indices({ epoch, step: s }), 'int32');
        const loss = optimizer.minimize(o.makeLoss(vars, idx), true, varList) as tf.Scalar;
        idx.dispose();
        step++;
        if (step % logEvery === 0 || step === totalSteps) {
          finalLoss = (await loss.data())[0];
          o.onProgress?.({ epoch, step, totalSteps, loss: finalLoss, seconds: (now() - t0) / 1000 });
          await yieldToEventLoop();
        }
        loss.dispose();
      }
    }
    const params: Record<string, tf.Tensor> = {};
    for (const name of o.paramNames) params[name] = vars[name].clone();
    return { params, steps: step, seconds: (now() - t0) / 1000, finalLoss };
  } finally {
    optimizer.dispose();
    tf.dispose(varList);
  }
}
