import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  SbmError,
  backendReason,
  initRegisteredBackend,
  makeBackend,
  registerBackend,
  removeBackend,
  startCpuBackend,
} from '@sbm/core';

describe('backend helpers shared by the adapters', () => {
  it('makeBackend fills the defaults, records the active tfjs backend and holds no tfjs namespace', async () => {
    await startCpuBackend();
    expect(tf.getBackend()).toBe('cpu');
    const b = makeBackend({ name: 'cpu', kind: 'node', reason: 'why', capabilities: { training: true } });
    expect(b).toEqual({
      name: 'cpu',
      tfBackend: 'cpu',
      kind: 'node',
      capabilities: { training: true, webgpu: false, float32: true, threads: 1 },
      reason: 'why',
      storage: undefined,
      images: undefined,
    });
    expect('tf' in b).toBe(false);
    const gpu = makeBackend({ name: 'x', kind: 'browser', reason: '', capabilities: { training: false, threads: 4 } });
    expect(gpu.capabilities).toEqual({ training: false, webgpu: false, float32: true, threads: 4 });
  });

  it('backendReason says how a backend was asked for only when it was asked for by name', () => {
    expect(backendReason({ explicit: false, requestedBy: 'ignored' }, 'wasm (2 threads)')).toBe('wasm (2 threads)');
    expect(backendReason({ explicit: true }, 'cpu')).toBe('cpu: asked for by name');
    expect(backendReason({ explicit: true, requestedBy: 'asked for by SBM_BACKEND=cpu' }, 'cpu')).toBe(
      'cpu: asked for by SBM_BACKEND=cpu',
    );
  });

  it('initRegisteredBackend passes requestedBy to the factory and logs one line', async () => {
    registerBackend('helpers-test', async (ctx) =>
      makeBackend({
        name: 'helpers-test',
        kind: 'node',
        reason: backendReason(ctx, 'fake'),
        capabilities: { training: true },
      }),
    );
    try {
      const lines: string[] = [];
      const b = await initRegisteredBackend('helpers-test', {
        requestedBy: "asked for by option backend: 'helpers-test'",
        log: (l) => lines.push(l),
      });
      expect(b.reason).toBe("fake: asked for by option backend: 'helpers-test'");
      expect(lines).toEqual(["sbm: backend fake: asked for by option backend: 'helpers-test'"]);
      await expect(initRegisteredBackend('helpers-nope', { requestedBy: '', log: false })).rejects.toBeInstanceOf(
        SbmError,
      );
    } finally {
      removeBackend('helpers-test');
      await startCpuBackend();
    }
  });
});
