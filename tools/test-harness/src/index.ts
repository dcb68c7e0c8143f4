import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe } from 'vitest';
import { initTensorflow, initWasm, initWebgpu } from '@sbm/backend-node';

/** Backends a numeric suite can run on in Node. */
export type TestBackend = 'cpu' | 'wasm' | 'tensorflow' | 'webgpu';

export interface BackendTestContext {
  backend: TestBackend;
}

const req = createRequire(import.meta.url);
const load = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

function installed(specifier: string): boolean {
  try {
    req.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Why each optional backend is (not) in availableBackends(): tests print it, and skipped backends stay visible.
 */
export function backendAvailability(): Record<TestBackend, { available: boolean; reason: string }> {
  const tfjsNode = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].find(installed);
  const icd = env('VK_ICD_FILENAMES');
  let webgpu: { available: boolean; reason: string };
  if (env('SBM_TEST_WEBGPU') !== '1') webgpu = { available: false, reason: 'opt-in: set SBM_TEST_WEBGPU=1' };
  else if (!icd || !icd.split(':').every((f) => existsSync(f))) {
    webgpu = { available: false, reason: 'VK_ICD_FILENAMES must name an existing Vulkan ICD file (e.g. SwiftShader)' };
  } else if (!installed('webgpu')) webgpu = { available: false, reason: 'the npm package webgpu is not installed' };
  else webgpu = { available: true, reason: `Dawn on ${icd}` };
  return {
    cpu: { available: true, reason: 'always' },
    wasm: { available: true, reason: 'always' },
    tensorflow: tfjsNode
      ? { available: true, reason: `${tfjsNode} is installed` }
      : { available: false, reason: '@tensorflow/tfjs-node(-gpu) is not installed' },
    webgpu,
  };
}

/** The backends available here: cpu and wasm always; tensorflow when installed; webgpu when opted in. */
export function availableBackends(): TestBackend[] {
  const a = backendAvailability();
  return (['cpu', 'wasm', 'tensorflow', 'webgpu'] as const).filter((b) => a[b].available);
}

/**
 * Activates `name` the way @sbm/backend-node does (wasm with sbm's training kernels registered). wasm runs on one
 * thread unless SBM_WASM_THREADS says otherwise: test files already run in parallel processes.
 */
export async function activateTestBackend(name: TestBackend): Promise<void> {
  switch (name) {
    case 'cpu':
      if (!(await tf.setBackend('cpu'))) throw new Error("test-harness: tf.setBackend('cpu') failed");
      break;
    case 'wasm':
      await initWasm({ threads: env('SBM_WASM_THREADS') === undefined ? 1 : undefined });
      break;
    case 'tensorflow':
      await initTensorflow(load);
      break;
    case 'webgpu':
      await initWebgpu(load, true);
      break;
  }
  await tf.ready();
}

/**
 * Defines the suite `fn` once per available backend, with that backend active for its tests
 * (in the spirit of tfjs-core's describeWithFlags(name, ALL_ENVS, fn)). `opts.backends` narrows the set; a backend
 * named there but unavailable here is skipped, with the reason in the suite name.
 */
export function describeWithBackends(
  name: string,
  fn: (ctx: BackendTestContext) => void,
  opts: { backends?: TestBackend[] } = {},
): void {
  const wanted = opts.backends ?? (['cpu', 'wasm', 'tensorflow', 'webgpu'] as TestBackend[]);
  const availability = backendAvailability();
  for (const backend of wanted) {
    const { available, reason } = availability[backend];
    // An unavailable backend stays visible in the report as a skipped suite naming what is missing.
    const title = available ? `${name} [${backend}]` : `${name} [${backend} skipped: ${reason}]`;
    describe.skipIf(!available)(title, () => {
      beforeAll(async () => {
        if (available) await activateTestBackend(backend);
      });
      fn({ backend });
    });
  }
}

export { expectSbmError, expectThrowsSbm, expectRejectsSbm } from './expect';
