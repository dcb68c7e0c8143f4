import * as tf from '@tensorflow/tfjs';
import type { CheckpointStorage } from '@sbm/core';
import { SbmError } from '@sbm/core';

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
