import { SbmError } from './errors';

/** Throws ABORTED if the signal fired. Long loops call it once per step. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'operation'): void {
  if (signal?.aborted) {
    throw new SbmError('ABORTED', `${what} was aborted${signal.reason ? `: ${String(signal.reason)}` : ''}`, {
      reason: signal.reason,
    });
  }
}

/**
 * Yields to the event loop (so a browser page stays responsive and an AbortSignal can fire). Uses setImmediate
 * where it exists (Node) and a zero timeout elsewhere.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (cb: () => void) => void };
  return new Promise((resolve) => (g.setImmediate ? g.setImmediate(resolve) : setTimeout(resolve, 0)));
}

/** Milliseconds since an arbitrary origin (performance.now where available). */
export function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
