import * as tf from '@tensorflow/tfjs';

/** One update's figures as read back. */
export interface StepRecord {
  /** 1-based update number. */
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
}

/** The first update whose batch, loss or gradient norm was not finite, and which of them. */
export interface NonFiniteStep {
  step: number;
  what: string;
}

/**
 * The NaN guard's host half: keeps each update's [loss, norm, batch-finite] on the device and reads all pending
 * ones in one `await data()` when asked — every `nanCheckEvery` steps, before each progress report and checkpoint,
 * and at the end — instead of one readback per step (Node WebGPU refuses synchronous reads; on a GPU each one
 * stalls the pipeline).
 */
export class StepLog {
  private pending: { step: number; lr: number; stats: tf.Tensor1D }[] = [];

  push(step: number, lr: number, stats: tf.Tensor1D): void {
    this.pending.push({ step, lr, stats });
  }

  get size(): number {
    return this.pending.length;
  }

  /** Reads the pending updates: the records up to the first bad one, and that one if there is one. */
  async read(): Promise<{ records: StepRecord[]; bad?: NonFiniteStep }> {
    if (this.pending.length === 0) return { records: [] };
    const pending = this.pending;
    this.pending = [];
    const all = tf.stack(pending.map((p) => p.stats));
    let v: Float32Array;
    try {
      v = (await all.data()) as Float32Array;
    } finally {
      all.dispose();
      tf.dispose(pending.map((p) => p.stats));
    }
    const records: StepRecord[] = [];
    for (let i = 0; i < pending.length; i++) {
      const [loss, gradNorm, batchOk] = [v[3 * i], v[3 * i + 1], v[3 * i + 2]];
      const { step, lr } = pending[i];
      if (batchOk === 0) return { records, bad: { step, what: 'the data batch' } };
      if (!Number.isFinite(loss)) return { records, bad: { step, what: `the loss (${loss})` } };
      if (!Number.isFinite(gradNorm)) return { records, bad: { step, what: `the gradient norm (${gradNorm})` } };
      records.push({ step, loss, gradNorm, lr });
    }
    return { records };
  }

  dispose(): void {
    tf.dispose(this.pending.map((p) => p.stats));
    this.pending = [];
  }
}
