import { initBackend, type BrowserBackendName } from '@sbm/backend-browser';
import { SbmError, isSbmError, type Backend } from '@sbm/core';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { digitsHandlers } from './digits/handlers';
import { playgroundHandlers, resetPlayground } from './playground/handlers';
import {
  BACKEND_GET,
  BACKEND_SET,
  CANCEL,
  transferablesOf,
  type BackendInfo,
  type DemoRequest,
  type DemoResponse,
  type Handler,
  type HandlerContext,
} from './protocol';

/*
 * All compute of the site runs here, so the page never blocks on tfjs. One backend at a time, chosen by
 * @sbm/backend-browser (webgpu › webgl › wasm › cpu, or by name through `backend:set`); the .wasm files are the
 * site's own assets (Vite's `?url`), so nothing is fetched from another origin.
 */
// The page's tsconfig has the DOM lib, not WebWorker (the two conflict in one program): the few worker members used.
const scope = self as unknown as {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent<DemoRequest>) => void): void;
};

const WASM_PATHS = {
  'tfjs-backend-wasm.wasm': new URL(wasmPlain, self.location.href).href,
  'tfjs-backend-wasm-simd.wasm': new URL(wasmSimd, self.location.href).href,
  'tfjs-backend-wasm-threaded-simd.wasm': new URL(wasmThreaded, self.location.href).href,
};

const handlers: Record<string, Handler> = { ...playgroundHandlers, ...digitsHandlers };
const controllers = new Map<number, AbortController>();

let current: Backend | undefined;
let starting: Promise<Backend> | undefined;

function info(b: Backend): BackendInfo {
  return {
    backend: b.name,
    reason: b.reason,
    crossOriginIsolated: Boolean((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated),
    threads: b.capabilities.threads,
  };
}

/** wasm threads asked for by the page (`?threads=`); undefined: all cores, at most 4. */
let threadsAsked: number | undefined;

async function start(name: string): Promise<Backend> {
  const b = await initBackend({
    backend: name as BrowserBackendName | 'auto',
    wasmPaths: WASM_PATHS,
    // tfjs's default is half the cores (backend.cc assumes two hyper-threads per core); here the page thread idles
    // while the worker computes, so the worker takes them all (at most 4: XNNPACK gains little beyond on these small
    // matrices). @sbm/backend-browser lifts tfjs's cores / 2 cap for this request (wasm.ts, withCoreCount).
    wasmThreads: threadsAsked ?? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)),
    log: false,
  });
  current = b;
  return b;
}

/**
 * Switches the backend. Models live on the backend they were made on, so the playground's state is dropped first.
 * A backend that does not start is an error for the caller; the worker then keeps (or, on a first start, falls back
 * to the automatic choice of) a backend that works, so the page stays usable.
 */
async function setBackend(name: string, threads?: number): Promise<BackendInfo> {
  if (typeof name !== 'string') {
    throw new SbmError('INVALID_ARGUMENT', `backend: expected a backend name, got ${typeof name}`, {
      argument: 'backend',
    });
  }
  // Checked by initBackend (an integer in [1, 8]); a bad value fails this request only, not the fallback start.
  const wanted = threadsAsked;
  if (threads !== undefined) threadsAsked = threads;
  await starting?.catch(() => undefined);
  const previous = current;
  resetPlayground();
  starting = start(name);
  try {
    return info(await starting);
  } catch (e) {
    threadsAsked = wanted;
    starting = previous ? start(previous.name) : start('auto');
    await starting.catch(() => undefined);
    throw e;
  }
}

async function ready(): Promise<Backend> {
  if (!starting) starting = start('auto');
  return starting;
}

function post(m: DemoResponse): void {
  scope.postMessage(m, transferablesOf('data' in m ? m.data : undefined));
}

async function dispatch(req: DemoRequest): Promise<void> {
  const { id, type, payload } = req;
  if (type === CANCEL) {
    const target = (payload as { id?: number } | undefined)?.id;
    for (const [k, c] of controllers) if (target === undefined || k === target) c.abort();
    post({ id, kind: 'result', data: null });
    return;
  }
  const controller = new AbortController();
  controllers.set(id, controller);
  try {
    let data: unknown;
    if (type === BACKEND_SET) {
      const p = payload as { name: string; threads?: number };
      data = await setBackend(p.name, p.threads);
    } else if (type === BACKEND_GET) data = info(await ready());
    else {
      const h = handlers[type];
      if (!h) {
        throw new SbmError('UNKNOWN_NAME', `type: expected one of ${Object.keys(handlers).join(', ')}, got "${type}"`, {
          argument: 'type',
        });
      }
      await ready();
      const ctx: HandlerContext = {
        progress: (d) => post({ id, kind: 'progress', data: d }),
        signal: controller.signal,
        backend: () => current?.name ?? 'none',
      };
      data = await h(payload, ctx);
    }
    post({ id, kind: 'result', data });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    post({ id, kind: 'error', message, code: isSbmError(e) ? e.code : undefined });
  } finally {
    controllers.delete(id);
  }
}

scope.addEventListener('message', (ev: MessageEvent<DemoRequest>) => void dispatch(ev.data));
