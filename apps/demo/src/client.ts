import { CANCEL, type DemoResponse } from './protocol';

/** An error answered by the worker: the message as thrown there and the SbmError code, when it was one. */
export class DemoError extends Error {
  readonly code?: string;
  constructor(message: string, code?: string) {
    super(message);
    this.name = 'DemoError';
    this.code = code;
  }
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  onProgress?: (data: any) => void;
}

/**
 * The page's side of src/protocol.ts: one promise per request, progress callbacks, cancellation. The last request's
 * id is `lastId`, so a caller can cancel what it just started.
 */
export class DemoClient {
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  lastId = 0;

  constructor(private readonly worker: Worker) {
    worker.addEventListener('message', (ev: MessageEvent<DemoResponse>) => this.onMessage(ev.data));
    worker.addEventListener('error', (ev: ErrorEvent) => {
      // A worker that fails to load or throws outside a handler: every waiting request fails with that reason.
      const err = new DemoError(`worker: ${ev.message || 'failed to start'}`, 'WORKER_ERROR');
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  request<T>(
    type: string,
    payload?: unknown,
    opts: { onProgress?: (data: any) => void; transfer?: Transferable[] } = {},
  ): Promise<T> {
    const id = this.next++;
    this.lastId = id;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress: opts.onProgress });
      this.worker.postMessage({ id, type, payload }, opts.transfer ?? []);
    });
  }

  /** Aborts request `id` (every request in flight without one); it then rejects with code `ABORTED`. */
  cancel(id?: number): void {
    const cid = this.next++;
    this.worker.postMessage({ id: cid, type: CANCEL, payload: { id } });
  }

  /** Requests still waiting for their answer. */
  inFlight(): number[] {
    return [...this.pending.keys()];
  }

  private onMessage(m: DemoResponse): void {
    const p = this.pending.get(m.id);
    if (!p) return; // a cancel's own answer, or a request already settled
    if (m.kind === 'progress') {
      p.onProgress?.(m.data);
      return;
    }
    this.pending.delete(m.id);
    if (m.kind === 'result') p.resolve(m.data);
    else p.reject(new DemoError(m.message, m.code));
  }
}
