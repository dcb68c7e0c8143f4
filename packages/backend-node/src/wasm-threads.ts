import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SbmError } from '@sbm/core';

/*
 * Multithreaded tfjs-backend-wasm in Node.
 *
 * tfjs ships an Emscripten pthreads build (tfjs-backend-wasm-threaded-simd.{js,wasm}) but never uses it in Node:
 *  1. the flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false when IS_NODE (tfjs issue #3830);
 *  2. its init() hands Emscripten the pthread worker script as a `blob:` URL and the main script as a Blob, and
 *     Node's worker_threads can start neither;
 *  3. backend.cc caps the XNNPACK pool at emscripten_num_logical_cores() / 2 (it assumes hyper-threading), which is
 *     1 on a 2-core machine, so even a working build would compute on one thread;
 *  4. Emscripten ref()s every worker that runs a pthread, and XNNPACK's pool threads never exit, so Node would never
 *     exit either.
 * We therefore instantiate the threaded module ourselves: the worker script goes to a real file (its Node branch
 * already uses worker_threads and importScripts-by-path), the main script is passed as a file path, the core count
 * import is answered with 2 × the requested threads so that the /2 lands on the request, and the workers are
 * unref()'d so they never keep the process alive. The resulting module is wrapped in tfjs's own BackendWasm, so all
 * of tfjs's wasm kernels run unchanged.
 */

interface EmscriptenWorker {
  ref(): void;
  unref(): void;
}

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: unknown[]) => unknown;
  PThread: {
    unusedWorkers: EmscriptenWorker[];
    runningWorkers: EmscriptenWorker[];
    allocateUnusedWorker: () => void;
  };
  tfjs?: Record<string, unknown>;
}

type ThreadedFactory = (config: Record<string, unknown>) => Promise<ThreadedModule>;

export interface WasmPackage {
  BackendWasm: new (module: unknown) => tf.KernelBackend;
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
  version_wasm?: string;
}

/** Paths inside @tensorflow/tfjs-backend-wasm that the threaded build needs. */
function threadedFiles(): { factory: string; worker: string; wasm: string; version: string } {
  const req = createRequire(import.meta.url);
  const pkgJson = req.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  const dir = dirname(pkgJson);
  const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  const files = {
    factory: join(dir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js'),
    worker: join(dir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js'),
    wasm: join(dir, 'dist', 'tfjs-backend-wasm-threaded-simd.wasm'),
    version,
  };
  for (const f of [files.factory, files.worker, files.wasm]) {
    if (!existsSync(f)) throw new Error(`${f} is missing from @tensorflow/tfjs-backend-wasm ${version}`);
  }
  return files;
}

/**
 * Writes the pthread worker script to a file named after its content hash in the temp directory (write to a temp name,
 * then rename, so concurrent processes never see a half-written script). Reused across runs.
 */
function workerScriptFile(workerModulePath: string, version: string): string {
  const req = createRequire(import.meta.url);
  const { wasmWorkerContents } = req(workerModulePath) as { wasmWorkerContents: string };
  // The worker source is stored in a template literal, so its "\n" escapes arrive as real newlines inside string
  // literals; turn them back into escapes (tfjs does the same before making its Blob).
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const file = join(tmpdir(), `sbm-tfjs-wasm-${version}-pthread-${hash}.cjs`);
  if (existsSync(file) && readFileSync(file, 'utf8') === source) return file;
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, source);
  renameSync(tmp, file);
  return file;
}

function keepWorkerUnreferenced(w: EmscriptenWorker): void {
  // Emscripten calls worker.ref() when a pthread starts on it; XNNPACK's pool threads run for the life of the module.
  w.ref = () => {};
  w.unref();
}

/** Instantiates the threaded Emscripten module with an XNNPACK pool of `threads` threads (caller included). */
async function instantiateThreaded(threads: number, timeoutMs: number): Promise<ThreadedModule> {
  const files = threadedFiles();
  const workerFile = workerScriptFile(files.worker, files.version);
  const req = createRequire(import.meta.url);
  const factory = req(files.factory) as ThreadedFactory;
  const wasmBytes = readFileSync(files.wasm);

  let abortMessage: string | undefined;
  const config: Record<string, unknown> = {
    locateFile: (path: string, prefix: string) => {
      if (path.endsWith('.worker.js')) return workerFile;
      if (path.endsWith('.wasm')) return files.wasm;
      return prefix + path;
    },
    // A string is passed to each worker, which then loads it with importScripts (a file read in Node).
    mainScriptUrlOrBlob: files.factory,
    instantiateWasm: (
      info: { env: Record<string, unknown> },
      receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ) => {
      // backend.cc: pool = min(max(request, 1), 8, logical_cores / 2).
      info.env.emscripten_num_logical_cores = () => 2 * threads;
      WebAssembly.instantiate(wasmBytes, info as unknown as WebAssembly.Imports).then(
        ({ instance, module }) => receive(instance, module),
        (e: unknown) => {
          abortMessage = String(e);
        },
      );
      return {};
    },
    onAbort: (what: unknown) => {
      abortMessage = String(what);
    },
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(abortMessage ?? `the pthread workers did not start within ${timeoutMs} ms`)),
      timeoutMs,
    );
    (timer as { unref?: () => void }).unref?.();
  });
  try {
    const module = await Promise.race([factory(config), timeout]);
    for (const w of module.PThread.unusedWorkers) keepWorkerUnreferenced(w);
    for (const w of module.PThread.runningWorkers) keepWorkerUnreferenced(w);
    const allocate = module.PThread.allocateUnusedWorker;
    module.PThread.allocateUnusedWorker = () => {
      allocate();
      for (const w of module.PThread.unusedWorkers) keepWorkerUnreferenced(w);
    };
    // The same bridge tfjs's init() builds (backend_wasm.ts), which BackendWasm and its kernels call through.
    module.tfjs = {
      init: module.cwrap('init', null, []),
      initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: module.cwrap('get_threads_count', 'number', []),
      registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: module.cwrap('dispose_data', null, ['number']),
      dispose: module.cwrap('dispose', null, []),
    };
    return module;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A BackendWasm computing with `threads` threads. Throws (plain Error with a one-line message) when the threaded
 * build cannot start; the caller falls back to tfjs's single-threaded init.
 */
export async function createThreadedWasmBackend(
  wasm: WasmPackage,
  threads: number,
  timeoutMs = 30_000,
): Promise<tf.KernelBackend> {
  if (typeof SharedArrayBuffer === 'undefined') throw new Error('SharedArrayBuffer is not available');
  if (!Number.isInteger(threads) || threads < 2 || threads > 8) {
    throw new SbmError('INVALID_ARGUMENT', `wasm threads: expected an integer in [2, 8], got ${threads}`);
  }
  const module = await instantiateThreaded(threads, timeoutMs);
  wasm.setThreadsCount(threads);
  return new wasm.BackendWasm(module);
}
