import * as tf from '@tensorflow/tfjs';
import { firstLine, tryLoad, unavailable, type ModuleLoader } from './load';

interface WasmPackage {
  setWasmPaths(prefixOrFileMap: string | Record<string, string>, usePlatformFetch?: boolean): void;
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}

export interface BrowserWasmOptions {
  /**
   * Where the .wasm files are served (a URL prefix ending in '/', or a map file name → URL). Bundlers do not copy
   * them by themselves: with Vite, `import simd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url'`
   * and pass a map of the three files.
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * XNNPACK threads, the calling thread included (1–8; used only where the page or worker is cross-origin isolated,
   * as SharedArrayBuffer requires). Default: tfjs's choice, half of navigator.hardwareConcurrency (at least 1, at most
   * 4). Takes effect at the first start of wasm in the page; later starts reuse that module.
   */
  wasmThreads?: number;
}

export interface BrowserWasmInfo {
  threads: number;
  training: boolean;
  notes: string[];
}

/** tfjs's wasm backend with sbm's gradient kernels (@sbm/wasm-kernels). */
export async function initWasm(loader: ModuleLoader, opts: BrowserWasmOptions): Promise<BrowserWasmInfo> {
  const pkg = await tryLoad<WasmPackage>(loader, '@tensorflow/tfjs-backend-wasm');
  if (!pkg.ok) throw unavailable(pkg.message);
  const wasm = pkg.module;
  const notes: string[] = [];
  const first = !tf.engine().registry.wasm;
  if (first) {
    if (opts.wasmPaths !== undefined) wasm.setWasmPaths(opts.wasmPaths);
    if (opts.wasmThreads !== undefined) wasm.setThreadsCount(opts.wasmThreads);
  }
  const started = await withCoreCount(first ? opts.wasmThreads : undefined, () => tf.setBackend('wasm'));
  if (!started) {
    throw unavailable(
      "tfjs's wasm backend failed to start: the .wasm files were not found next to the bundle; pass wasmPaths (see the README)",
    );
  }
  await tf.ready();
  let threads = 1;
  try {
    threads = wasm.getThreadsCount();
  } catch {
    // Not reported before initialisation completes; 1 is the single-threaded build.
  }
  let training = false;
  try {
    const kernels = (await loader('@sbm/wasm-kernels')) as {
      registerWasmTrainingKernels(): string[];
      prepareWasmKernels?(options?: { threads?: number; backend?: unknown }): Promise<boolean>;
    };
    kernels.registerWasmTrainingKernels();
    training = true;
    // Browsers refuse to compile a module over 4 KB synchronously on the main thread: compile the kernels' SIMD
    // module now, so that their first call finds it (without it they run their JavaScript loops).
    // With XNNPACK's thread count for its passes (workers over the shared heap of the threaded build).
    if (kernels.prepareWasmKernels && !(await kernels.prepareWasmKernels({ threads, backend: tf.backend() }))) {
      notes.push('no wasm SIMD: the training kernels run as JavaScript loops');
    }
  } catch (e) {
    notes.push(`@sbm/wasm-kernels unavailable (${firstLine(e)}): some gradients are missing`);
  }
  const isolated = Boolean((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated);
  if (threads === 1 && !isolated) {
    notes.push('no threads: the page is not cross-origin isolated (COOP/COEP)');
  } else if (first && opts.wasmThreads !== undefined && threads < opts.wasmThreads) {
    notes.push(`asked for ${opts.wasmThreads} threads`);
  }
  return { threads, training, notes };
}

/** The part of `navigator` read here (absent in Node < 21). */
type CoreCounter = { hardwareConcurrency?: number };

/**
 * Runs the wasm backend's start with navigator.hardwareConcurrency reporting at least 2 × `threads`.
 *
 * tfjs-backend-wasm 4.22's backend.cc sizes XNNPACK's pool as min(max(request, 1), 8, logical_cores / 2), with
 * logical_cores = emscripten_num_logical_cores() = navigator.hardwareConcurrency: it halves the count on the
 * assumption of two hyper-threads per core, so setThreadsCount can lower the pool but never lift it above half the
 * cores, and a 2-core machine computes on 1 thread whatever it asks for. The count is read once, by a C++ static
 * initialiser, when the module is instantiated inside tf.setBackend('wasm'); the real getter (on the prototype) is
 * back as soon as that resolves or fails. @sbm/backend-node answers the same Emscripten import in Node
 * (wasm-threads.ts). Other code reading the count during the start sees the raised value; in the demo that is only
 * the worker doing the start.
 */
export async function withCoreCount<T>(threads: number | undefined, run: () => Promise<T>): Promise<T> {
  const nav = (globalThis as { navigator?: CoreCounter }).navigator;
  const real = nav?.hardwareConcurrency;
  if (!nav || threads === undefined || threads < 2 || typeof real !== 'number' || Math.floor(real / 2) >= threads) {
    return run();
  }
  const own = Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency');
  try {
    Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * threads, configurable: true });
  } catch {
    // A non-configurable own property: tfjs keeps its cap and the reason line says how many threads it gave.
    return run();
  }
  try {
    return await run();
  } finally {
    if (own) Object.defineProperty(nav, 'hardwareConcurrency', own);
    else delete (nav as Record<string, unknown>).hardwareConcurrency;
  }
}
