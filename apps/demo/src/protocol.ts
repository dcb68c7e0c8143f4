/**
 * Messages between the page and the compute worker. Every request carries an id; the worker answers it with any
 * number of `progress` messages and then exactly one `result` or `error`. A request of type `cancel` (payload
 * `{ id? }`) aborts that request's signal (all in-flight requests without an id) and is answered itself.
 */
export interface DemoRequest {
  id: number;
  type: string;
  payload?: unknown;
}

export interface ProgressMessage {
  id: number;
  kind: 'progress';
  data: unknown;
}

export interface ResultMessage {
  id: number;
  kind: 'result';
  data: unknown;
}

export interface ErrorMessage {
  id: number;
  kind: 'error';
  message: string;
  /** The SbmError code when the failure was one (`BACKEND_UNAVAILABLE`, `INVALID_ARGUMENT`, `ABORTED`, …). */
  code?: string;
}

export type DemoResponse = ProgressMessage | ResultMessage | ErrorMessage;

/** What a handler gets besides its payload. */
export interface HandlerContext {
  /** Streams one `progress` message for this request (transferables are detected and moved, not copied). */
  progress(data: unknown): void;
  /** Aborted by a `cancel` request naming this request (or all). */
  signal: AbortSignal;
  /** The tfjs backend in use now (`webgpu`, `webgl`, `wasm`, `cpu`). */
  backend(): string;
}

export type Handler = (payload: any, ctx: HandlerContext) => Promise<unknown>;

/** Request types the worker itself handles (the handler tables add the rest). */
export const CANCEL = 'cancel';
export const BACKEND_SET = 'backend:set';
export const BACKEND_GET = 'backend:get';

/** The answer to `backend:set` / `backend:get`. */
export interface BackendInfo {
  backend: string;
  reason: string;
  crossOriginIsolated: boolean;
  threads?: number;
}

/** Typed arrays and their buffers found (one level deep) in a message, so they are moved instead of copied. */
export function transferablesOf(data: unknown): Transferable[] {
  const out = new Set<Transferable>();
  const visit = (v: unknown) => {
    if (ArrayBuffer.isView(v) && v.buffer instanceof ArrayBuffer) out.add(v.buffer);
    else if (v instanceof ArrayBuffer) out.add(v);
  };
  if (data && typeof data === 'object') {
    visit(data);
    for (const v of Object.values(data)) {
      visit(v);
      if (Array.isArray(v)) v.forEach(visit);
    }
  }
  return [...out];
}
