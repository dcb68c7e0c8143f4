import { afterEach, describe, expect, it } from 'vitest';
import { isSbmError } from '@sbm/core';
import { initBackend } from '@sbm/backend-browser';
import { withCoreCount } from '../src/wasm';

/*
 * tfjs-backend-wasm 4.22 caps its XNNPACK pool at navigator.hardwareConcurrency / 2 (backend.cc), so wasm.ts makes the
 * count read 2 × the request while the backend starts. In Node there is no tfjs threaded build to start, so these
 * tests check the part that is ours: the count seen during the start, and the real getter afterwards.
 */
const g = globalThis as { navigator?: unknown };
const hadNavigator = Object.getOwnPropertyDescriptor(globalThis, 'navigator');

/** A navigator like a browser's: hardwareConcurrency is a getter on the prototype, none on the object. */
function fakeNavigator(cores: number): { hardwareConcurrency: number } {
  const nav = Object.create({
    get hardwareConcurrency() {
      return cores;
    },
  }) as { hardwareConcurrency: number };
  Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  return nav;
}

afterEach(() => {
  if (hadNavigator) Object.defineProperty(globalThis, 'navigator', hadNavigator);
  else delete g.navigator;
});

describe('wasm threads: lifting tfjs cores / 2 cap during the start', () => {
  it('reports 2 × threads while the start runs and the real count afterwards (also when it fails)', async () => {
    const nav = fakeNavigator(2);
    const seen = await withCoreCount(2, async () => nav.hardwareConcurrency);
    expect(seen).toBe(4);
    expect(nav.hardwareConcurrency).toBe(2);
    expect(Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency')).toBeUndefined();

    const failed = await withCoreCount(3, async () => {
      expect(nav.hardwareConcurrency).toBe(6);
      throw new Error('wasm did not start');
    }).catch((e: Error) => e.message);
    expect(failed).toBe('wasm did not start');
    expect(nav.hardwareConcurrency).toBe(2);
    expect(Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency')).toBeUndefined();
  });

  it('leaves the count alone where tfjs would give the threads anyway, or none were asked for', async () => {
    const nav = fakeNavigator(8);
    expect(await withCoreCount(4, async () => nav.hardwareConcurrency)).toBe(8);
    expect(await withCoreCount(undefined, async () => nav.hardwareConcurrency)).toBe(8);
    fakeNavigator(2);
    expect(
      await withCoreCount(1, async () => (g.navigator as { hardwareConcurrency: number }).hardwareConcurrency),
    ).toBe(2);
  });

  it('puts back an own property that was there before', async () => {
    const nav = fakeNavigator(2);
    Object.defineProperty(nav, 'hardwareConcurrency', { value: 3, configurable: true, enumerable: true });
    expect(await withCoreCount(2, async () => nav.hardwareConcurrency)).toBe(4);
    expect(Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency')).toEqual({
      value: 3,
      configurable: true,
      enumerable: true,
      writable: false,
    });
  });

  it('runs unchanged without a navigator (Node < 21)', async () => {
    delete g.navigator;
    expect(await withCoreCount(2, async () => 'ran')).toBe('ran');
  });

  it('rejects a thread count outside 1..8 by name, before any backend starts', async () => {
    for (const bad of [0, 2.5, 9, Number.NaN]) {
      const e = await initBackend({ backend: 'cpu', wasmThreads: bad, log: false }).catch((x: unknown) => x);
      expect(isSbmError(e, 'INVALID_ARGUMENT'), String(bad)).toBe(true);
      expect((e as Error).message).toMatch(/^wasmThreads: expected an integer >= 1 <= 8, got /);
    }
  });
});
