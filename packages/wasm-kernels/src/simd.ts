import * as tf from '@tensorflow/tfjs';
import { SbmError } from '@sbm/core';
import { SIMD_MODULE_PLAIN, SIMD_MODULE_SHARED } from './simd.generated';
import { type Pool, type PoolExport, createPool, splitRange } from './pool';
import type { WasmBackendLike } from './wasm';

/**
 * The SIMD module (assembly/kernels.ts, compiled by scripts/build-wasm.mjs): loops that are memory- or
 * arithmetic-bound in JavaScript, run as 128-bit wasm SIMD on the tensors where they lie. The module imports the
 * tfjs wasm backend's own memory, so it reads and writes the heap in place — no copies — and is handed byte
 * offsets. It has no data, allocator or stack of its own; scratch space is a tensor the caller allocates.
 *
 * Two builds of the same source: one for an ordinary memory (tfjs's single-threaded wasm) and one for a shared
 * memory (its pthreads build), since an imported memory must match in sharedness.
 */
export interface SimdExports {
  groupNormScratchBytes(C: number): number;
  groupNormForward(
    x: number,
    bias: number,
    gamma: number,
    beta: number,
    y: number,
    B: number,
    P: number,
    C: number,
    groups: number,
    eps: number,
    swish: number,
    scratch: number,
  ): void;
  groupNormBackward(
    dy: number,
    x: number,
    bias: number,
    gamma: number,
    beta: number,
    dx: number,
    dbias: number,
    partials: number,
    B: number,
    P: number,
    C: number,
    groups: number,
    eps: number,
    swish: number,
    scratch: number,
  ): void;
  adamUpdate(
    p: number,
    g: number,
    m: number,
    v: number,
    po: number,
    mo: number,
    vo: number,
    n: number,
    scale: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    eps: number,
    stepSize: number,
    sqrtBc2: number,
  ): void;
  emaUpdate(s: number, p: number, o: number, n: number, w: number): void;
  copyRows(src: number, srcStride: number, dst: number, dstStride: number, rowBytes: number, rows: number): void;
  im2colT(
    xT: number,
    col: number,
    B: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
    KH: number,
    KW: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    pt: number,
    pl: number,
    b0: number,
    nb: number,
    r0: number,
    r1: number,
  ): void;
  col2imAdd(
    cols: number,
    dx: number,
    B: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
    KH: number,
    KW: number,
    sh: number,
    sw: number,
    pt: number,
    pl: number,
  ): void;
  sumRows64(src: number, rows: number, stride: number, dst: number, cols: number): void;
  filterGradSmallK(
    x: number,
    dy: number,
    partials: number,
    B: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
    CO: number,
    KH: number,
    KW: number,
    sh: number,
    sw: number,
    dh: number,
    dw_: number,
    pt: number,
    pl: number,
    scratch: number,
  ): void;
}

type Variant = 'plain' | 'shared';

const compiled: Partial<Record<Variant, WebAssembly.Module | null>> = {};
const instances = new WeakMap<WebAssembly.Memory, SimdExports | null>();
/** `SBM_WASM_SIMD=0` in the environment (Node) keeps every kernel on its JavaScript path: for A/B runs and bisecting. */
let enabled = !(typeof process !== 'undefined' && process.env?.SBM_WASM_SIMD === '0');

function bytesOf(variant: Variant): Uint8Array<ArrayBuffer> {
  const b64 = variant === 'shared' ? SIMD_MODULE_SHARED : SIMD_MODULE_PLAIN;
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function supported(variant: Variant): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(bytesOf(variant));
  } catch {
    return false;
  }
}

const pools = new WeakMap<WebAssembly.Memory, Pool>();
const startingPools = new WeakMap<WebAssembly.Memory, Promise<void>>();

/** Options of prepareWasmKernels. */
export interface PrepareOptions {
  /**
   * Threads for the SIMD module's passes, the calling thread included (default 1). With more, and a running wasm
   * backend whose heap is shared (tfjs's pthreads build), that many − 1 workers are started; the adapters pass the
   * backend's XNNPACK thread count.
   */
  threads?: number;
  /** The wasm backend (default: tfjs's 'wasm' backend if it has started). */
  backend?: unknown;
}

/**
 * Compiles both builds asynchronously (where the engine can run them: wasm SIMD, and shared memory for the shared
 * one). Browsers refuse to compile modules over 4 KB synchronously on the main thread, so the browser adapter awaits
 * this before its first kernel; in Node (and in workers) a kernel compiles synchronously on first use, so calling it
 * is optional. Resolves to whether the SIMD module can be used.
 */
export async function prepareSimdKernels(options: PrepareOptions = {}): Promise<boolean> {
  const t = options.threads;
  if (t !== undefined && !(Number.isInteger(t) && t >= 1 && t <= 8)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `prepareWasmKernels: threads must be an integer from 1 to 8, got ${String(t)}`,
      {
        argument: 'threads',
        expected: 'integer in [1, 8]',
        received: t,
      },
    );
  }
  for (const variant of ['plain', 'shared'] as const) {
    if (compiled[variant] !== undefined) continue;
    compiled[variant] = supported(variant) ? await WebAssembly.compile(bytesOf(variant)).catch(() => null) : null;
  }
  // SBM_WASM_SIMD_THREADS=N (Node) overrides the count the adapter passes: 1 keeps every pass on the calling thread.
  const env = typeof process !== 'undefined' ? process.env?.SBM_WASM_SIMD_THREADS : undefined;
  const threads = env !== undefined && /^[1-8]$/.test(env) ? Number(env) : (options.threads ?? 1);
  const backend = (options.backend ?? tf.findBackend('wasm') ?? null) as WasmBackendLike | null;
  const memory = backend ? heapMemory(backend) : undefined;
  const shared = memory !== undefined && isShared(memory);
  if (threads > 1 && memory !== undefined && shared && compiled.shared && !pools.has(memory)) {
    // One start per heap, also when two callers prepare at once.
    let starting = startingPools.get(memory);
    if (starting === undefined) {
      starting = createPool(compiled.shared, memory, threads - 1)
        .then((pool) => {
          pools.set(memory, pool);
        })
        .catch(() => {
          // No workers (a sandbox without them, a CSP): the passes run on the calling thread.
        })
        .finally(() => startingPools.delete(memory));
      startingPools.set(memory, starting);
    }
    await starting;
  }
  return compiled.plain != null || compiled.shared != null;
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/** Workers for this backend's heap (prepareWasmKernels with threads > 1 on a shared heap), or null. */
export function poolFor(backend: WasmBackendLike): Pool | null {
  if (!enabled || !poolsEnabled) return null;
  const memory = heapMemory(backend);
  return memory === undefined ? null : (pools.get(memory) ?? null);
}

let poolsEnabled = true;

/** Test and benchmark switch: false runs every pass on the calling thread. Returns the previous value. */
export function setPoolEnabled(on: boolean): boolean {
  const old = poolsEnabled;
  poolsEnabled = on;
  return old;
}

/** Threads the SIMD passes use for this backend (1 without workers). */
export function simdThreads(backend: WasmBackendLike): number {
  const p = poolFor(backend);
  return p === null ? 1 : p.size + 1;
}

/**
 * Runs export `fn` once per argument list: the first here, the others on the backend's workers when it has them
 * (otherwise one after the other here). The parts must be independent of each other.
 */
export function runParts(backend: WasmBackendLike, simd: SimdExports, fn: PoolExport, parts: number[][]): void {
  const f = (simd as unknown as Record<string, (...a: number[]) => void>)[fn];
  const pool = parts.length > 1 ? poolFor(backend) : null;
  if (pool === null) {
    for (const a of parts) f(...a);
    return;
  }
  pool.run(fn, parts, (a) => f(...a));
}

/** Builds whose synchronous compile was refused (a browser's main thread): not retried on every kernel call. */
const syncRefused = new Set<Variant>();

function moduleFor(variant: Variant): WebAssembly.Module | null {
  let m = compiled[variant];
  if (m === undefined) {
    if (syncRefused.has(variant)) return null;
    try {
      m = supported(variant) ? new WebAssembly.Module(bytesOf(variant)) : null;
    } catch {
      // e.g. a browser's main thread before prepareSimdKernels(): stay on the JavaScript kernels until
      // prepareSimdKernels() compiles the module asynchronously (it fills `compiled`, which is checked first).
      syncRefused.add(variant);
      return null;
    }
    compiled[variant] = m;
  }
  return m;
}

/** The tfjs wasm backend's heap: its Emscripten module's memory (pthreads build: Module.wasmMemory). */
function heapMemory(backend: WasmBackendLike): WebAssembly.Memory | undefined {
  const mod = (backend as unknown as { wasm?: { wasmMemory?: unknown; asm?: { memory?: unknown } } }).wasm;
  const mem = mod?.wasmMemory ?? mod?.asm?.memory;
  return mem instanceof WebAssembly.Memory ? mem : undefined;
}

/** The SIMD module bound to this backend's heap, or null where it cannot run (then the JavaScript kernels do). */
export function simdFor(backend: WasmBackendLike): SimdExports | null {
  if (!enabled) return null;
  const memory = heapMemory(backend);
  if (memory === undefined) return null;
  const cached = instances.get(memory);
  if (cached !== undefined) return cached;
  const m = moduleFor(isShared(memory) ? 'shared' : 'plain');
  if (m === null) return null;
  let exports: SimdExports | null;
  try {
    exports = new WebAssembly.Instance(m, { env: { memory } }).exports as unknown as SimdExports;
  } catch {
    exports = null;
  }
  instances.set(memory, exports);
  return exports;
}

/** Instantiates a build over a memory of the caller's (tests: the shared build without a pthreads backend). */
export function instantiateSimd(memory: WebAssembly.Memory, variant: Variant): SimdExports {
  return new WebAssembly.Instance(new WebAssembly.Module(bytesOf(variant)), { env: { memory } })
    .exports as unknown as SimdExports;
}

/** Raw module bytes of a build (tests inspect its sections). */
export function simdModuleBytes(variant: Variant): Uint8Array<ArrayBuffer> {
  return bytesOf(variant);
}

/** Test and benchmark switch: false makes every kernel take its JavaScript path. Returns the previous value. */
export function setSimdEnabled(on: boolean): boolean {
  const old = enabled;
  enabled = on;
  return old;
}

/** Whether the kernels run on the SIMD module for this backend (for benchmarks and diagnostics). */
export function simdActive(backend: WasmBackendLike): boolean {
  return simdFor(backend) !== null;
}

/**
 * Ranges of `n` units (samples, images, rows) for the threads the SIMD passes have: one range when there are no
 * workers or when the call is small (under `minWork` values in all, `work` values a unit), so that waking a worker
 * never costs more than it saves.
 */
export function partsFor(backend: WasmBackendLike, n: number, work: number, minWork = 1 << 16): [number, number][] {
  const threads = n * work >= minWork ? simdThreads(backend) : 1;
  return splitRange(n, threads);
}

/** Byte offset of a tensor's data on the heap. */
export function ptr(backend: WasmBackendLike, info: tf.TensorInfo): number {
  return backend.typedArrayFromHeap(info).byteOffset;
}
