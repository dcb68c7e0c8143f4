import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { isSbmError } from '@sbm/core';
import { _internals, prepareWasmKernels } from '@sbm/wasm-kernels';
// @ts-expect-error: a plain .mjs script without types
import { render } from '../scripts/build-wasm.mjs';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { seeded, useWasmTrainingKernels } from './helpers';

useWasmTrainingKernels();

/** Section ids of a wasm binary, in order (1 type, 2 import, 3 function, 7 export, 10 code, 11 data, 12 data count…). */
function sectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let i = 8; // magic + version
  while (i < bytes.length) {
    const id = bytes[i++];
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[i++];
      size |= (b & 0x7f) << shift;
      shift += 7;
      if (b < 0x80) break;
    }
    ids.push(id);
    i += size;
  }
  return ids;
}

const EXPORTS = [
  'adamUpdate',
  'col2imAdd',
  'copyRows',
  'emaUpdate',
  'filterGradSmallK',
  'groupNormBackward',
  'groupNormForward',
  'groupNormScratchBytes',
  'im2colT',
  'sumRows64',
];

describe('the SIMD module (assembly/kernels.ts)', () => {
  it('src/simd.generated.ts is what the pinned AssemblyScript compiles the source to', async () => {
    const committed = readFileSync(fileURLToPath(new URL('../src/simd.generated.ts', import.meta.url)), 'utf8');
    expect((await render()) === committed, 'run node packages/wasm-kernels/scripts/build-wasm.mjs').toBe(true);
  }, 60_000);

  it('imports only the heap, owns no data, globals or start function, exports the kernels', () => {
    for (const variant of ['plain', 'shared'] as const) {
      const bytes = _internals.simdModuleBytes(variant);
      const m = new WebAssembly.Module(bytes);
      expect(WebAssembly.Module.imports(m)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      const funcs = WebAssembly.Module.exports(m)
        .filter((e) => e.kind === 'function')
        .map((e) => e.name)
        .sort();
      expect(funcs).toEqual(EXPORTS);
      const ids = sectionIds(bytes);
      // No global (6), start (8), data (11) or data-count (12) section: nothing is written but what a call is given.
      for (const forbidden of [6, 8, 11, 12]) expect(ids, `${variant}: section ${forbidden}`).not.toContain(forbidden);
    }
  });

  it('prepareWasmKernels: compiles the module; a bad thread count is an SbmError naming it', async () => {
    expect(await prepareWasmKernels()).toBe(true);
    for (const threads of [0, 1.5, 9, Number.NaN]) {
      const err = await prepareWasmKernels({ threads }).catch((e: unknown) => e);
      expect(isSbmError(err) && err.code, String(threads)).toBe('INVALID_ARGUMENT');
      expect((err as Error).message).toMatch(/threads must be an integer from 1 to 8/);
    }
  });

  it('runs on the wasm backend in Node (and SBM_WASM_SIMD / setSimdEnabled(false) switch it off)', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as Parameters<typeof _internals.simdActive>[0];
    expect(_internals.simdActive(backend)).toBe(true);
    const old = _internals.setSimdEnabled(false);
    try {
      expect(_internals.simdActive(backend)).toBe(false);
    } finally {
      _internals.setSimdEnabled(old);
    }
  });

  it('the shared-memory build (tfjs pthreads) computes exactly what the plain build does', () => {
    // Same inputs at the same offsets of an ordinary and of a shared memory; every kernel; outputs byte for byte.
    const pages = 8;
    const plain = new WebAssembly.Memory({ initial: pages });
    const shared = new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true });
    const kp = _internals.instantiateSimd(plain, 'plain');
    const ks = _internals.instantiateSimd(shared, 'shared');
    const [B, P, C, G] = [3, 35, 12, 3];
    const n = B * P * C;
    const fill = (mem: WebAssembly.Memory) => {
      const f = new Float32Array(mem.buffer);
      f.set(seeded([n], 1), 0); // x at 0
      f.set(seeded([n], 2), n); // dy
      f.set(seeded([B * C], 3), 2 * n); // bias
      f.set(seeded([C], 4), 2 * n + B * C); // gamma
      f.set(seeded([C], 5), 2 * n + B * C + C); // beta
    };
    fill(plain);
    fill(shared);
    const run = (k: typeof kp) => {
      const o = (i: number) => 4 * i;
      const [x, dy, bias, gamma, beta] = [0, n, 2 * n, 2 * n + B * C, 2 * n + B * C + C];
      const out = 2 * n + B * C + 2 * C;
      const scratch = out + 4 * n + 2 * C + B * C;
      k.groupNormForward(o(x), o(bias), o(gamma), o(beta), o(out), B, P, C, G, 1e-5, 1, o(scratch));
      const dx = out + n;
      k.groupNormBackward(
        o(dy),
        o(x),
        o(bias),
        o(gamma),
        o(beta),
        o(dx),
        o(dx + n), // dbias [B, C]
        o(dx + n + B * C), // per-sample sums [B, 2C] float64
        B,
        P,
        C,
        G,
        1e-5,
        1,
        o(scratch),
      );
      k.sumRows64(o(dx + n + B * C), B, 2 * C, o(dx + n + 5 * B * C), C);
      const a = dx + 2 * n;
      k.adamUpdate(
        o(x),
        o(dy),
        o(bias),
        o(gamma),
        o(a),
        o(a + 64),
        o(a + 128),
        50,
        0.5,
        0.9,
        0.1,
        0.999,
        0.001,
        1e-8,
        1e-3,
        0.1,
      );
      k.emaUpdate(o(x), o(dy), o(a + 200), 37, 0.001);
      k.copyRows(o(x), 4 * 12, o(a + 300), 4 * 7, 4 * 5, 20);
      // x as [1, 5, 7, 1] → 3×3 valid → dy [1, 3, 5, 4]: dW [3, 3, 1, 4]
      k.filterGradSmallK(o(x), o(dy), o(a + 500), 1, 5, 7, 1, 3, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0, o(scratch));
      k.sumRows64(o(a + 500), 1, 36, o(a + 580), 36);
      // x as [C = 1, B = 1, 5, 7] → colT of a 3×3 stride-2 'same' conv [9, 3·4]; then a col2im of it onto [1, 5, 7, 1]
      k.im2colT(o(x), o(a + 600), 1, 5, 7, 1, 3, 4, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1, 0, 9);
      k.col2imAdd(o(a + 600), o(a + 800), 1, 5, 7, 1, 3, 4, 3, 3, 2, 2, 1, 1);
      return new Uint8Array(k === kp ? plain.buffer : shared.buffer).slice(0, o(scratch));
    };
    const a = run(kp);
    const b = run(ks);
    expect(a.length).toBeGreaterThan(0);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it("swish over ±95: the module's exp and sigmoid keep float32 accuracy in both tails", () => {
    // One channel a group, 9 pixels, γ = 40: u = γ·n spans about ±95. The forward without the activation returns u
    // itself (the same float32 expression), with swish u·σ(u); checked against u·σ(u) in float64, element by
    // element, relative to |u·σ(u)| (down to 1e−36 near u = −87, where only a relative test means anything).
    const mem = new WebAssembly.Memory({ initial: 4 });
    const k = _internals.instantiateSimd(mem, 'plain');
    const [B, P, C] = [4, 9, 6]; // C = 6: four SIMD lanes and two scalar channels
    const n = B * P * C;
    const f = new Float32Array(mem.buffer);
    f.set(seeded([n], 9), 0);
    const gamma = n;
    const beta = n + C;
    for (let c = 0; c < C; c++) {
      f[gamma + c] = 40;
      f[beta + c] = c - 3;
    }
    const u = beta + C;
    const y = u + n;
    const scratch = 4 * (y + n);
    k.groupNormForward(0, 0, 4 * gamma, 4 * beta, 4 * u, B, P, C, C, 1e-5, 0, scratch);
    k.groupNormForward(0, 0, 4 * gamma, 4 * beta, 4 * y, B, P, C, C, 1e-5, 1, scratch);
    let worst = 0;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      const ui = f[u + i];
      lo = Math.min(lo, ui);
      hi = Math.max(hi, ui);
      const want = ui / (1 + Math.exp(-ui));
      // Below u = −87 σ(u) is under float32's normal range and the module returns 0, as the cpu backend does.
      if (ui < -87) expect(Math.abs(f[y + i])).toBe(0);
      else worst = Math.max(worst, Math.abs(f[y + i] - want) / Math.abs(want));
    }
    expect(lo).toBeLessThan(-87);
    expect(hi).toBeGreaterThan(60);
    // float32 rounding of exp's polynomial (< 2e−7), of the division and of the product: a few ulps (6e−8 each).
    expect(worst).toBeLessThan(1e-6);
  });
});
