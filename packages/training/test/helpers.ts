import * as tf from '@tensorflow/tfjs';
import type { CheckpointStorage } from '@sbm/core';
import { SbmError } from '@sbm/core';
import type { ScoreModel } from '@sbm/models';
import { createSde } from '@sbm/sde';
import type { BatchSource, TrainOptions } from '@sbm/training';

/**
 * In-memory CheckpointStorage with the same contract as the file storage (a load of a missing location is
 * FILE_NOT_FOUND). `failOn(kind, n)` makes the n-th (1-based, counted from the call) save / writeFile throw
 * before storing anything, simulating a crash half-way through a checkpoint.
 */
export class MemoryStorage implements CheckpointStorage {
  readonly files = new Map<string, Uint8Array>();
  readonly artifacts = new Map<string, tf.io.ModelArtifacts>();
  private failures: { kind: 'save' | 'writeFile'; countdown: number }[] = [];
  writes = 0;

  failOn(kind: 'save' | 'writeFile', n: number): void {
    this.failures.push({ kind, countdown: n });
  }

  private maybeFail(kind: 'save' | 'writeFile', what: string): void {
    for (const f of this.failures) {
      if (f.kind === kind && --f.countdown === 0) {
        this.failures = this.failures.filter((x) => x !== f);
        throw new SbmError('IO_ERROR', `simulated failure while writing ${what}`);
      }
    }
  }

  handler(location: string): tf.io.IOHandler {
    return {
      save: async (a) => {
        this.maybeFail('save', location);
        this.writes++;
        const data = a.weightData as ArrayBuffer;
        this.artifacts.set(location, { ...a, weightData: data.slice(0) });
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
      },
      load: async () => {
        const a = this.artifacts.get(location);
        if (!a) throw new SbmError('FILE_NOT_FOUND', `${location} does not exist`);
        return { ...a, weightData: (a.weightData as ArrayBuffer).slice(0) };
      },
    };
  }

  async exists(location: string): Promise<boolean> {
    return this.artifacts.has(location);
  }

  async writeFile(location: string, name: string, data: Uint8Array | string): Promise<void> {
    this.maybeFail('writeFile', `${location}/${name}`);
    this.writes++;
    this.files.set(`${location}/${name}`, typeof data === 'string' ? new TextEncoder().encode(data) : data.slice());
  }

  async readFile(location: string, name: string): Promise<Uint8Array> {
    const f = this.files.get(`${location}/${name}`);
    if (!f) throw new SbmError('FILE_NOT_FOUND', `${location}/${name} does not exist`);
    return f.slice();
  }
}

/** Values of every weight, by name (copies). */
export function snapshot(weights: { name: string; tensor: tf.Tensor }[]): Record<string, Float32Array> {
  return Object.fromEntries(weights.map((w) => [w.name, w.tensor.dataSync() as Float32Array]));
}

/**
 * A BatchSource over `good` (64 × 2): two 32-row batches an epoch, clean up to step 6 (0-based), then each with a
 * NaN in row 3 — the non-finite data the trainer must stop on (or skip, on the guarded fused path).
 */
export function nanFromStep6(good: tf.Tensor2D): BatchSource {
  return {
    stepsPerEpoch: 2,
    size: 64,
    batch: (pos) => {
      const k = pos.epoch * 2 + pos.step;
      return tf.tidy(() => {
        const b = tf.slice(good, [pos.step * 32, 0], [32, 2]);
        return k < 6 ? b : tf.where(tf.equal(tf.range(0, 32).reshape([32, 1]), 3), tf.fill([32, 2], NaN), b);
      });
    },
    next: (pos) => (pos.step === 1 ? { epoch: pos.epoch + 1, step: 0 } : { epoch: pos.epoch, step: 1 }),
  };
}

/** The small VP run the trainer tests share (batch 32, lr 3e-3 after 5 warm-up steps, seed 11); `rest` overrides. */
export function smallVpRun(model: ScoreModel, data: tf.Tensor2D, rest: Partial<TrainOptions> = {}): TrainOptions {
  return { model, sde: createSde('vp'), data, batchSize: 32, lr: 3e-3, warmup: 5, seed: 11, ...rest };
}
