import * as tf from '@tensorflow/tfjs';
import { describe, beforeAll } from 'vitest';

/** Backends a numeric suite can run on in Node. */
export type TestBackend = 'cpu' | 'wasm' | 'tensorflow' | 'webgpu';

export interface BackendTestContext {
  backend: TestBackend;
}

async function activate(name: TestBackend): Promise<void> {
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`test-harness: tf.setBackend('${name}') failed`);
  await tf.ready();
}

/** The backends available here: cpu and wasm always; more when installed / enabled. */
export function availableBackends(): TestBackend[] {
  const out: TestBackend[] = ['cpu', 'wasm'];
  return out;
}

/**
 * Defines the suite `fn` once per available backend, with that backend active for its tests
 * (in the spirit of tfjs-core's describeWithFlags(name, ALL_ENVS, fn)).
 */
export function describeWithBackends(
  name: string,
  fn: (ctx: BackendTestContext) => void,
  opts: { backends?: TestBackend[] } = {},
): void {
  const wanted = opts.backends ?? availableBackends();
  for (const backend of availableBackends()) {
    if (!wanted.includes(backend)) continue;
    describe(`${name} [${backend}]`, () => {
      beforeAll(async () => {
        await activate(backend);
      });
      fn({ backend });
    });
  }
}
