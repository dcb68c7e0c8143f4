import * as tf from '@tensorflow/tfjs';
import { SbmError, checkFnOutput, checkNumber, describeValue, withGradientCleanup } from '@sbm/core';
import type { ScoreFn } from '@sbm/sde';
import { sample, type SampleOptions } from '@sbm/samplers';
import type { ConditionalResult, ConditionalSampleOptions, MethodDefinition, TimeClassifierFn } from '../types';

export interface GuidanceOptions {
  /**
   * A noise-conditional classifier: logits [b, C] of p_t(c | x_t) at times t [b]. score_sde's is conditioned on σ_t;
   * map t to what yours takes inside it (e.g. `(x, t) => net(x, sde.stdT(t))`).
   */
  classifier: TimeClassifierFn;
  /** The class to sample: one for the batch, or one per sample (integers in [0, C)). */
  label: number | number[];
  /** Guidance weight w ≥ 0 (default 1: the exact class-conditional score for an exact p_t(c | x); 0: unguided). */
  scale?: number;
  /** C, when known: the classifier's output is checked against it (and `label` before sampling). */
  numClasses?: number;
}

export const GUIDANCE_KEYS = ['classifier', 'label', 'scale', 'numClasses'] as const;

interface Checked {
  classifier: TimeClassifierFn;
  label: number | number[];
  scale: number;
  numClasses?: number;
}

function checkLabel(v: unknown, name: string, numClasses?: number): number {
  const ok = typeof v === 'number' && Number.isInteger(v) && v >= 0 && (numClasses === undefined || v < numClasses);
  if (!ok) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected an integer class in [0, ${numClasses ?? 'C'}), got ${describeValue(v)}`,
      { argument: 'label', received: v },
    );
  }
  return v as number;
}

function checkGuidance(opts: unknown): Checked {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `classifierGuidedScore: options: expected { classifier, label, scale?, numClasses? }, got ${describeValue(opts)}`,
    );
  }
  const o = opts as Record<string, unknown>;
  if (typeof o.classifier !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `classifier: expected a function (x, t) => logits [batch, classes], got ${describeValue(o.classifier)}`,
      { argument: 'classifier' },
    );
  }
  const scale = checkNumber(o.scale ?? 1, 'scale', { min: 0 });
  const numClasses =
    o.numClasses === undefined ? undefined : checkNumber(o.numClasses, 'numClasses', { integer: true, min: 1 });
  let label: number | number[];
  if (Array.isArray(o.label)) {
    if (o.label.length === 0) {
      throw new SbmError('INVALID_ARGUMENT', 'label: expected a class or one class per sample, got an empty array', {
        argument: 'label',
      });
    }
    label = o.label.map((v, i) => checkLabel(v, `label[${i}]`, numClasses));
  } else {
    label = checkLabel(o.label, 'label', numClasses);
  }
  return { classifier: o.classifier as TimeClassifierFn, label, scale, numClasses };
}

/** The guided score; `counter.vjp` counts the gradients through the classifier. */
function guided(score: ScoreFn, g: Checked, counter: { vjp: number }): ScoreFn {
  return (x, t) =>
    tf.tidy(() => {
      const base = checkFnOutput(score(x, t), x, 'score');
      if (g.scale === 0) return base;
      const b = x.shape[0];
      const labels = typeof g.label === 'number' ? new Array<number>(b).fill(g.label) : g.label;
      if (labels.length !== b) {
        throw new SbmError(
          'INVALID_SHAPE',
          `label: expected one class per sample (${b}), got ${labels.length} (${describeValue(g.label)})`,
          { argument: 'label' },
        );
      }
      counter.vjp++;
      // ∇ₓ log p_t(c | x) = ∇ₓ log softmax(logits)[c] (score_sde get_pc_conditional_sampler; Dhariwal & Nichol 2021,
      // eq. 10 with w = scale). Summed over the batch: each sample's term depends on its own x only.
      const grad = withGradientCleanup(() =>
        tf.grad((xv: tf.Tensor) => {
          const logits = g.classifier(xv, t);
          if (!(logits instanceof tf.Tensor) || logits.isDisposed || logits.rank !== 2 || logits.shape[0] !== b) {
            throw new SbmError(
              'INVALID_SHAPE',
              `classifier: expected logits of shape [${b}, classes], got ${logits instanceof tf.Tensor ? (logits.isDisposed ? 'a disposed tensor' : `[${logits.shape.join(', ')}]`) : describeValue(logits)}`,
              { argument: 'classifier' },
            );
          }
          const C = logits.shape[1] as number;
          if (g.numClasses !== undefined && C !== g.numClasses) {
            throw new SbmError(
              'INVALID_SHAPE',
              `classifier: expected ${g.numClasses} classes (numClasses), got logits [${logits.shape.join(', ')}]`,
              { argument: 'classifier' },
            );
          }
          labels.forEach((c, i) => {
            if (c >= C) {
              throw new SbmError(
                'INVALID_ARGUMENT',
                `label${typeof g.label === 'number' ? '' : `[${i}]`}: expected an integer class in [0, ${C}) (the classifier's ${C} classes), got ${c}`,
                { argument: 'label', received: c },
              );
            }
          });
          const onehot = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), C), 'float32');
          return tf.sum(tf.mul(tf.logSoftmax(tf.cast(logits, 'float32')), onehot));
        })(x),
      );
      return tf.add(base, tf.mul(grad, g.scale));
    });
}

/**
 * Classifier guidance: s(x, t) + w ∇ₓ log softmax(classifier(x, t))[label] (score_sde's JAX
 * get_pc_conditional_sampler has w = 1; Dhariwal & Nichol 2021 scale it). Options are checked now (scale, label,
 * numClasses); the classifier's output shape and the label's range against it at each call. One VJP through the
 * classifier per score call (none when scale is 0).
 */
export function classifierGuidedScore(score: ScoreFn, opts: GuidanceOptions): ScoreFn {
  if (typeof score !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `score: expected a function (x, t) => tensor, got ${describeValue(score)}`, {
      argument: 'score',
    });
  }
  return guided(score, checkGuidance(opts), { vjp: 0 });
}

const RESERVED = ['sampler', 'sde', 'score', 'shape', 'seed', 'signal', 'onProgress'];

async function runGuidance(opts: ConditionalSampleOptions): Promise<Omit<ConditionalResult, 'residual'>> {
  const g = checkGuidance(opts);
  if (Array.isArray(g.label) && g.label.length !== opts.shape[0]) {
    throw new SbmError(
      'INVALID_SHAPE',
      `label: expected one class per sample (shape[0] = ${opts.shape[0]}), got ${g.label.length}`,
      { argument: 'label' },
    );
  }
  const so = (opts.samplerOptions ?? {}) as Record<string, unknown>;
  for (const k of RESERVED) {
    if (k in so) {
      throw new SbmError('INVALID_ARGUMENT', `samplerOptions.${k}: give ${k} as an option of conditionalSample`, {
        argument: 'samplerOptions',
      });
    }
  }
  const counter = { vjp: 0 };
  const extra: Record<string, unknown> = {};
  if (opts.signal !== undefined) extra.signal = opts.signal;
  if (opts.onProgress !== undefined) extra.onProgress = opts.onProgress;
  const { samples, stats } = await sample({
    sampler: opts.sampler ?? 'pc',
    ...so,
    ...extra,
    sde: opts.sde,
    score: guided(opts.score, g, counter),
    shape: opts.shape,
    seed: opts.seed,
  } as SampleOptions);
  return { samples, stats: { ...stats, method: 'guidance', vjp: counter.vjp } };
}

/** Classifier-guided sampling on any registered sampler (default 'pc'); needs no measurement. */
export const guidanceMethod: MethodDefinition = {
  run: runGuidance,
  keys: GUIDANCE_KEYS,
  needsMeasurement: false,
  samplers: 'any',
  description:
    'classifier guidance (score_sde get_pc_conditional_sampler; Dhariwal & Nichol 2021): s + w ∇ log p_t(label | x) on any sampler',
};
