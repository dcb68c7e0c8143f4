import { describe, expect, it } from 'vitest';
import { _internals } from '@sbm/wasm-kernels';
import { seeded } from './helpers';

// The worker pool on a shared memory of the test's own (the kernel-level check under tfjs's pthreads build, with
// a training step's kernels, is packages/backend-node/test/wasm-threads.test.ts).
describe('the SIMD module worker pool', () => {
  const setup = async () => {
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true });
    const module = new WebAssembly.Module(_internals.simdModuleBytes('shared'));
    const here = _internals.instantiateSimd(memory, 'shared');
    const pool = await _internals.createPool(module, memory, 1);
    return { memory, here, pool };
  };

  it('a group norm split between this thread and a worker equals the unsplit call, bit for bit', async () => {
    const { memory, here, pool } = await setup();
    try {
      const [B, P, C, G] = [6, 49, 12, 3];
      const n = B * P * C;
      const f = new Float32Array(memory.buffer);
      f.set(seeded([n], 1), 0);
      f.set(seeded([B * C], 2), n);
      f.set(seeded([C], 3), n + B * C);
      f.set(seeded([C], 4), n + B * C + C);
      const [x, bias, gamma, beta] = [0, n, n + B * C, n + B * C + C].map((i) => 4 * i);
      const y1 = 4 * (n + B * C + 2 * C);
      const y2 = y1 + 4 * n;
      const scratch = y2 + 4 * n;
      const sb = 16 * Math.ceil(here.groupNormScratchBytes(C) / 16);
      here.groupNormForward(x, bias, gamma, beta, y1, B, P, C, G, 1e-5, 1, scratch);
      // samples 0–2 here, 3–5 on the worker (each with its own scratch)
      const part = (lo: number, hi: number, i: number) => [
        x + 4 * lo * P * C,
        bias + 4 * lo * C,
        gamma,
        beta,
        y2 + 4 * lo * P * C,
        hi - lo,
        P,
        C,
        G,
        1e-5,
        1,
        scratch + i * sb,
      ];
      pool.run('groupNormForward', [part(0, 3, 0), part(3, 6, 1)], (a) =>
        (here.groupNormForward as (...v: number[]) => void)(...a),
      );
      const a = new Uint32Array(memory.buffer, y1, n);
      const b = new Uint32Array(memory.buffer, y2, n);
      expect(Array.from(b)).toEqual(Array.from(a));
      expect(a.some((v) => v !== 0)).toBe(true);
    } finally {
      pool.dispose();
    }
  });

  it("a worker's trap is an error of the call, and the pool keeps working; after dispose it refuses", async () => {
    const { memory, here, pool } = await setup();
    const copy = (a: number[]) => (here.copyRows as (...v: number[]) => void)(...a);
    // A copy from far beyond the memory's end traps in the worker.
    expect(() =>
      pool.run(
        'copyRows',
        [
          [0, 4, 64, 4, 4, 1],
          [2 ** 31, 4, 128, 4, 4, 1],
        ],
        copy,
      ),
    ).toThrow(/worker 0 failed in copyRows/);
    const f = new Float32Array(memory.buffer);
    f.set([1, 2, 3, 4], 0);
    pool.run(
      'copyRows',
      [
        [0, 4, 64, 4, 4, 2],
        [8, 4, 128, 4, 4, 2],
      ],
      copy,
    );
    expect(Array.from(f.subarray(16, 18))).toEqual([1, 2]);
    expect(Array.from(f.subarray(32, 34))).toEqual([3, 4]);
    pool.dispose();
    expect(() => pool.run('copyRows', [[0, 4, 64, 4, 4, 1]], copy)).toThrow(/after dispose/);
  });
});
