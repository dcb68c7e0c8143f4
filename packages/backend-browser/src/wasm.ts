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
  /** Threads (used only when the page is cross-origin isolated, as SharedArrayBuffer requires). */
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
  if (!tf.engine().registry.wasm) {
    if (opts.wasmPaths !== undefined) wasm.setWasmPaths(opts.wasmPaths);
    if (opts.wasmThreads !== undefined) wasm.setThreadsCount(opts.wasmThreads);
  }
  if (!(await tf.setBackend('wasm'))) {
    throw unavailable(
      "tfjs's wasm backend failed to start: the .wasm files were not found next to the bundle; pass wasmPaths (see the README)",
    );
  }
  await tf.ready();
  let training = false;
  try {
    const kernels = (await loader('@sbm/wasm-kernels')) as { registerWasmTrainingKernels(): string[] };
    kernels.registerWasmTrainingKernels();
    training = true;
  } catch (e) {
    notes.push(`@sbm/wasm-kernels unavailable (${firstLine(e)}): some gradients are missing`);
  }
  let threads = 1;
  try {
    threads = wasm.getThreadsCount();
  } catch {
    // Not reported before initialisation completes; 1 is the single-threaded build.
  }
  if (threads === 1 && !(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) {
    notes.push('no threads: the page is not cross-origin isolated (COOP/COEP)');
  }
  return { threads, training, notes };
}
