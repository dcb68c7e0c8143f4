/**
 * Worker threads that run the SIMD module's kernels on parts of a call, next to the calling thread — for tfjs's
 * pthreads build, whose heap is a shared memory. tfjs runs kernels one at a time and its XNNPACK threads idle
 * outside XNNPACK's own operators, so the cores are free while one of this package's passes runs.
 *
 * Each worker instantiates the same compiled module over the same memory and waits on its own control block
 * (Atomics.wait); a call writes the export's index and arguments there, bumps the sequence number and wakes it, runs
 * its own part, and waits for the worker's "done" (Atomics.wait where the thread may block — Node, workers —
 * otherwise a spin on Atomics.load, as a browser's main thread must). Kernels split only work whose parts are
 * independent (samples, images, rows) and reduce across parts in a fixed order, so a result does not depend on the
 * number of threads.
 */

/** Exports a worker can run, by index (the control block carries the index). */
export const POOL_EXPORTS = [
  'groupNormForward',
  'groupNormBackward',
  'filterGradSmallK',
  'im2colT',
  'col2imAdd',
  'copyRows',
] as const;
export type PoolExport = (typeof POOL_EXPORTS)[number];

const MAX_ARGS = 24;
// Int32 slots of a control block: sequence number, done (last finished sequence), export index, argument count,
// error flag; then MAX_ARGS float64 arguments from byte 32.
const SEQ = 0;
const DONE = 1;
const FN = 2;
const NARGS = 3;
const ERR = 4;
const ARGS_AT = 32;

/** How long a call waits for a worker before it gives up (a worker that never answers is a bug, not slowness). */
const WAIT_LIMIT_MS = 120_000;

// The worker's whole program. Node (worker_threads: parentPort) or a browser / Deno Worker (self).
const WORKER_SOURCE = `
const NAMES = ${JSON.stringify(POOL_EXPORTS)};
function start(msg, post) {
  const { memory, module, control } = msg;
  const fns = NAMES.map((n) => new WebAssembly.Instance(module, { env: { memory } }).exports[n]);
  const ctrl = new Int32Array(control, 0, 8);
  const args = new Float64Array(control, ${ARGS_AT}, ${MAX_ARGS});
  post('ready');
  let seen = 0;
  for (;;) {
    Atomics.wait(ctrl, ${SEQ}, seen);
    seen = Atomics.load(ctrl, ${SEQ});
    if (seen < 0) return;
    try {
      fns[ctrl[${FN}]](...Array.from(args.subarray(0, ctrl[${NARGS}])));
      ctrl[${ERR}] = 0;
    } catch (e) {
      ctrl[${ERR}] = 1;
    }
    Atomics.store(ctrl, ${DONE}, seen);
    Atomics.notify(ctrl, ${DONE});
  }
}
if (typeof self === 'undefined') {
  const { parentPort } = require('node:worker_threads');
  parentPort.once('message', (m) => start(m, (x) => parentPort.postMessage(x)));
} else {
  self.onmessage = (e) => start(e.data, (x) => self.postMessage(x));
}
`;

interface Handle {
  ctrl: Int32Array;
  args: Float64Array;
  seq: number;
  terminate(): void;
}

export interface Pool {
  /** Worker threads (the calling thread makes one more). */
  readonly size: number;
  /** Runs parts[0] here and parts[1 …] on the workers, and returns when all are done. */
  run(fn: PoolExport, parts: number[][], here: (args: number[]) => void): void;
  dispose(): void;
}

function canBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

type AnyWorker = {
  postMessage(m: unknown): void;
  terminate(): unknown;
  unref?(): void;
  on?(ev: string, f: (x: unknown) => void): void;
  off?(ev: string, f: (x: unknown) => void): void;
  addEventListener?(ev: string, f: (x: { data: unknown }) => void): void;
  removeEventListener?(ev: string, f: (x: { data: unknown }) => void): void;
};

async function spawn(): Promise<AnyWorker> {
  // Node first: @sbm/backend-node gives Node a global Worker (for tfjs's pthreads) that takes file paths only.
  const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);
  if (!isNode && typeof (globalThis as { Worker?: unknown }).Worker === 'function' && typeof Blob === 'function') {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
    const W = (globalThis as unknown as { Worker: new (u: string) => AnyWorker }).Worker;
    return new W(url);
  }
  // Node: worker_threads, named at run time so that browser bundlers leave it alone.
  const name = 'node:worker_threads';
  const wt = (await import(/* @vite-ignore */ name)) as { Worker: new (s: string, o: object) => AnyWorker };
  const w = new wt.Worker(WORKER_SOURCE, { eval: true });
  w.unref?.();
  return w;
}

/**
 * Resolves at the worker's first message ('ready'). Every listener is removed again: in Node a Worker with a
 * 'message' listener keeps the process alive even when unref()ed.
 */
function once(w: AnyWorker, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (e?: unknown) => {
      clearTimeout(t);
      if (w.off) {
        w.off('message', ok);
        w.off('error', fail);
      } else {
        w.removeEventListener?.('message', ok);
        w.removeEventListener?.('error', fail as never);
      }
      if (e === undefined) resolve();
      else reject(e instanceof Error ? e : new Error(String((e as { message?: string })?.message ?? e)));
    };
    const ok = () => done();
    const fail = (e: unknown) => done(e ?? new Error('worker failed'));
    const t = setTimeout(() => done(new Error('worker did not start')), timeoutMs);
    if (w.on) {
      w.on('message', ok);
      w.on('error', fail);
    } else {
      w.addEventListener?.('message', ok);
      w.addEventListener?.('error', fail as never);
    }
  });
}

/** Starts `size` workers over `memory` (shared) running `module`. Rejects when one does not start. */
export async function createPool(module: WebAssembly.Module, memory: WebAssembly.Memory, size: number): Promise<Pool> {
  const blocking = canBlock();
  const handles: Handle[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const control = new SharedArrayBuffer(ARGS_AT + 8 * MAX_ARGS);
      const w = await spawn();
      const started = once(w, 20_000);
      w.postMessage({ memory, module, control });
      handles.push({
        ctrl: new Int32Array(control, 0, 8),
        args: new Float64Array(control, ARGS_AT, MAX_ARGS),
        seq: 0,
        terminate: () => {
          Atomics.store(new Int32Array(control, 0, 8), SEQ, -1);
          Atomics.notify(new Int32Array(control, 0, 8), SEQ);
          void w.terminate();
        },
      });
      await started;
    }
  } catch (e) {
    for (const h of handles) h.terminate();
    throw e;
  }
  let disposed = false;
  return {
    size,
    run(fn, parts, here) {
      if (disposed) throw new Error('wasm kernel pool used after dispose');
      const index = POOL_EXPORTS.indexOf(fn);
      const jobs = parts.slice(1);
      if (jobs.length > handles.length) throw new Error(`pool: ${jobs.length} parts for ${handles.length} workers`);
      // Checked before any worker starts: a call that throws has nothing still running behind it.
      if (jobs.some((a) => a.length > MAX_ARGS)) throw new Error(`pool: ${fn} takes more than ${MAX_ARGS} arguments`);
      jobs.forEach((args, i) => {
        const h = handles[i];
        h.args.set(args);
        h.ctrl[FN] = index;
        h.ctrl[NARGS] = args.length;
        h.seq += 1;
        Atomics.store(h.ctrl, SEQ, h.seq);
        Atomics.notify(h.ctrl, SEQ);
      });
      let failed: unknown = null;
      try {
        here(parts[0]);
      } catch (e) {
        failed = e;
      }
      for (let i = 0; i < jobs.length; i++) {
        const h = handles[i];
        const t0 = Date.now();
        for (;;) {
          // Wait on the value just read: if the worker stores its "done" in between, the wait returns at once
          // (a wait on a value read inside the call could miss that store and sleep its whole timeout).
          const d = Atomics.load(h.ctrl, DONE);
          if (d === h.seq) break;
          if (blocking) Atomics.wait(h.ctrl, DONE, d, 1000);
          if (Date.now() - t0 > WAIT_LIMIT_MS) {
            throw new Error(`wasm kernel worker ${i} did not finish ${fn} in ${WAIT_LIMIT_MS} ms`);
          }
        }
        if (h.ctrl[ERR] !== 0) failed ??= new Error(`wasm kernel worker ${i} failed in ${fn}`);
      }
      if (failed !== null) throw failed;
    },
    dispose() {
      disposed = true;
      for (const h of handles) h.terminate();
    },
  };
}

/** Non-empty [lo, hi) ranges splitting 0 … n − 1 into at most `parts` nearly equal pieces. */
export function splitRange(n: number, parts: number): [number, number][] {
  const k = Math.max(1, Math.min(parts, n));
  const out: [number, number][] = [];
  for (let i = 0, lo = 0; i < k; i++) {
    const hi = i === k - 1 ? n : Math.round(((i + 1) * n) / k);
    if (hi > lo) out.push([lo, hi]);
    lo = hi;
  }
  return out;
}
