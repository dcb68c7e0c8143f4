import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { SbmError } from '@sbm/core';
import { readEnv } from './env';
import { defaultLoader, firstLine, tryLoad, unavailable, type ModuleLoader } from './optional-module';
import { createThreadedWasmBackend, type WasmPackage } from './wasm-threads';

export interface WasmOptions {
  /**
   * Threads the wasm backend computes with (XNNPACK pool, caller included), 1–8. 1 selects tfjs's single-threaded
   * SIMD build. Default: env SBM_WASM_THREADS, else the number of CPUs (at most 8).
   */
  threads?: number;
  loader?: ModuleLoader;
}

export interface WasmInfo {
  threads: number;
  /** Names of the gradient kernels @sbm/wasm-kernels registered, or null when it could not be loaded. */
  trainingKernels: string[] | null;
  /** Why fewer threads than requested, or why training kernels are missing (empty when all went as asked). */
  notes: string[];
}

const WASM_PKG = '@tensorflow/tfjs-backend-wasm';

interface RegistryEntry {
  factory: () => tf.KernelBackend | Promise<tf.KernelBackend>;
  priority: number;
}

function engineInternals(): {
  registry: Record<string, tf.KernelBackend>;
  registryFactory: Record<string, RegistryEntry>;
} {
  return tf.engine() as unknown as {
    registry: Record<string, tf.KernelBackend>;
    registryFactory: Record<string, RegistryEntry>;
  };
}

/** tfjs's own factory for 'wasm' (single-threaded in Node), kept so we can fall back to it. */
let stockFactory: RegistryEntry | undefined;
let activeThreads: number | undefined;

export function resolveWasmThreads(requested?: number): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1 || requested > 8) {
      throw new SbmError('INVALID_ARGUMENT', `threads: expected an integer from 1 to 8, got ${String(requested)}`, {
        argument: 'threads',
        expected: 'integer in [1, 8]',
        received: requested,
      });
    }
    return requested;
  }
  const env = readEnv('SBM_WASM_THREADS');
  if (env !== undefined) {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 8) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `SBM_WASM_THREADS: expected an integer from 1 to 8, got ${JSON.stringify(env)}`,
      );
    }
    return n;
  }
  return Math.max(1, Math.min(availableParallelism(), 8));
}

async function registerTrainingKernels(threads: number): Promise<{ kernels: string[] | null; note?: string }> {
  try {
    const { registerWasmTrainingKernels, prepareWasmKernels } = await import('@sbm/wasm-kernels');
    const kernels = registerWasmTrainingKernels();
    // The kernels' SIMD module (compiled here once, asynchronously; a kernel would otherwise compile it on first use),
    // with as many threads for its passes as XNNPACK has (workers over the shared heap of the threaded build).
    const simd = await prepareWasmKernels({ threads, backend: tf.backend() });
    return { kernels, ...(simd ? {} : { note: 'no wasm SIMD: the training kernels run as JavaScript loops' }) };
  } catch (e) {
    return { kernels: null, note: `@sbm/wasm-kernels unavailable (${firstLine(e)}): some gradients are missing` };
  }
}

/**
 * Activates tfjs's wasm backend in Node with `threads` threads and sbm's gradient kernels for it. Once initialised,
 * the wasm backend keeps its thread count for the life of the process (its tensors live in its memory), so a later
 * call with another count reuses it and says so in `notes`.
 */
export async function initWasm(opts: WasmOptions = {}): Promise<WasmInfo> {
  const loader = opts.loader ?? defaultLoader;
  const threads = resolveWasmThreads(opts.threads);
  const loaded = await tryLoad<WasmPackage>(loader, WASM_PKG);
  if (!loaded.ok) {
    throw unavailable(
      loaded.missing
        ? `${WASM_PKG} is not installed: npm install ${WASM_PKG}@^4.22.0`
        : `${loaded.message} (reinstall it: npm install ${WASM_PKG}@^4.22.0)`,
    );
  }
  const wasm = loaded.module;
  const notes: string[] = [];
  const internals = engineInternals();
  if (!stockFactory && internals.registryFactory.wasm) stockFactory = internals.registryFactory.wasm;

  if (internals.registry.wasm) {
    // Already running: switching thread count would drop every tensor it holds.
    if (activeThreads === undefined) activeThreads = safeThreadsCount(wasm);
    if (activeThreads !== threads) notes.push(`wasm already running with ${activeThreads} thread(s); kept`);
  } else if (threads > 1) {
    try {
      const backend = await createThreadedWasmBackend(wasm, threads);
      tf.removeBackend('wasm');
      tf.registerBackend('wasm', () => backend, stockFactory?.priority ?? 2);
      activeThreads = safeThreadsCount(wasm);
    } catch (e) {
      notes.push(`${threads} threads unavailable (${firstLine(e)}); single-threaded`);
      restoreStock();
    }
  } else {
    restoreStock();
  }

  if (!(await tf.setBackend('wasm'))) {
    throw unavailable(`${WASM_PKG} failed to initialise (see the warning above; its .wasm files may be missing)`);
  }
  await tf.ready();
  if (activeThreads === undefined) activeThreads = safeThreadsCount(wasm);

  const training = await registerTrainingKernels(activeThreads);
  if (training.note) notes.push(training.note);
  return { threads: activeThreads, trainingKernels: training.kernels, notes };
}

function restoreStock(): void {
  const internals = engineInternals();
  if (stockFactory && internals.registryFactory.wasm !== stockFactory) {
    tf.removeBackend('wasm');
    tf.registerBackend('wasm', stockFactory.factory, stockFactory.priority);
  }
}

function safeThreadsCount(wasm: WasmPackage): number {
  try {
    return wasm.getThreadsCount();
  } catch {
    return 1;
  }
}
