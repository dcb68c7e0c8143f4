import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FUSED_ADAM, FUSED_EMA, isSbmError } from '@sbm/core';
import { ExponentialMovingAverage, type ScoreModel } from '@sbm/models';
import { Adam } from '@sbm/training';
import { registerWasmTrainingKernels } from '@sbm/wasm-kernels';
import { SIMD_PATHS, seeded, withSimd } from './helpers';

// Odd sizes, a scalar-like [1], and shapes of every rank the models use.
const SHAPES: number[][] = [[3, 3, 1, 5], [7], [1], [4, 13], [2, 3, 3, 2], [33]];

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});
// Every test leaves the fused kernels registered (the composite runs unregister them).
afterEach(() => {
  registerWasmTrainingKernels();
});

/** With `fused` false the fused kernels are unregistered, so Adam and the EMA take their composite forms. */
function setFused(fused: boolean): void {
  registerWasmTrainingKernels();
  if (!fused) for (const k of [FUSED_ADAM, FUSED_EMA]) tf.unregisterKernel(k, 'wasm');
}

/** A variable owning its data (the initial tensor is freed). */
const newVar = (t: tf.Tensor, name?: string): tf.Variable => {
  const v = tf.variable(t, true, name);
  t.dispose();
  return v;
};

/** The raw bits of float32 values, so that −0 ≠ +0 and NaN payloads count. */
const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function mismatches(a: Float32Array[], b: Float32Array[]): number {
  let n = 0;
  a.forEach((x, i) => {
    const bx = bits(x);
    const by = bits(b[i]);
    if (bx.length !== by.length) n += Math.max(bx.length, by.length);
    else for (let j = 0; j < bx.length; j++) if (bx[j] !== by[j]) n++;
  });
  return n;
}

const values = (ts: tf.Tensor[]): Float32Array[] => ts.map((t) => Float32Array.from(t.dataSync() as Float32Array));

interface AdamRun {
  scale: 'one' | 'number' | 'tensor';
  /** apply flag per step (undefined: no flag passed). */
  apply?: boolean[];
  /** Steps whose gradients are NaN (only where apply is false, as the trainer guarantees). */
  nanSteps?: number[];
  steps: number;
}

/** p, m and v of every weight after `steps` Adam updates on `backend`, plus p after each step. */
async function runAdam(backend: string, fused: boolean, r: AdamRun) {
  setFused(fused);
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const ids = tf.backend().numDataIds();
  const params = new Map(
    SHAPES.map((s, i) => [
      `w${i}`,
      newVar(tf.tensor(seeded(s, 10 + i), s), `fo_${backend}_${fused}_${i}_${Math.random()}`),
    ]),
  );
  const adam = new Adam(
    [...params].map(([name, tensor]) => ({ name, tensor })),
    { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  );
  const history: Float32Array[][] = [];
  for (let step = 0; step < r.steps; step++) {
    const grads = new Map<string, tf.Tensor>(
      SHAPES.map((s, i) => {
        const g = seeded(s, 1000 * step + i).map((u) => (r.nanSteps?.includes(step) && i % 2 === 0 ? NaN : u * 0.3));
        return [`w${i}`, tf.tensor(g, s)] as const;
      }),
    );
    // The last weight has no gradient on odd steps: torch.optim.Adam (and the composite) skip it.
    const last = `w${SHAPES.length - 1}`;
    if (step % 2 === 1) {
      tf.dispose(grads.get(last)!);
      grads.delete(last);
    }
    const scale = r.scale === 'one' ? 1 : r.scale === 'number' ? 0.37 : tf.scalar(0.25 + step / 16);
    const apply = r.apply ? tf.scalar(r.apply[step], 'bool') : undefined;
    adam.update(params, grads, 3e-3 * (1 + step), scale, apply);
    tf.dispose([...grads.values(), ...(typeof scale === 'number' ? [] : [scale]), ...(apply ? [apply] : [])]);
    history.push(values([...params.values()]));
  }
  const st = adam.getState();
  const out = {
    p: values([...params.values()]),
    m: values(Object.values(st.m)),
    v: values(Object.values(st.v)),
    history,
  };
  adam.dispose();
  tf.dispose([...params.values()]);
  expect(tf.memory().numTensors).toBe(before);
  // Backend buffers too: a kernel that forgets an output or intermediate leaks a data id, not an engine tensor.
  expect(tf.backend().numDataIds()).toBe(ids);
  return out;
}

describe(`${FUSED_ADAM} (Adam over every weight in one call, wasm)`, () => {
  const runs: [string, AdamRun][] = [
    ['gradScale 1, no apply flag', { scale: 'one', steps: 5 }],
    ['gradScale 0.37 (a number), apply true', { scale: 'number', apply: [true, true, true, true], steps: 4 }],
    [
      'gradScale a scalar tensor, apply false on two steps (one with NaN gradients)',
      { scale: 'tensor', apply: [true, false, true, true, false, true], nanSteps: [4], steps: 6 },
    ],
  ];
  for (const { path, simd } of SIMD_PATHS)
    for (const [title, r] of runs) {
      it(`${path}: ${title}: bit-identical to the composite on wasm and on cpu`, async () => {
        const fused = await withSimd(simd, () => runAdam('wasm', true, r));
        const composite = await runAdam('wasm', false, r);
        const cpu = await runAdam('cpu', false, r);
        for (const k of ['p', 'm', 'v'] as const) {
          expect(mismatches(fused[k], composite[k]), `${k} vs wasm composite`).toBe(0);
          expect(mismatches(fused[k], cpu[k]), `${k} vs cpu composite`).toBe(0);
        }
        // A skipped step leaves every weight exactly as it was; an applied one moves them.
        r.apply?.forEach((a, step) => {
          if (step === 0) return;
          const changed = mismatches(fused.history[step], fused.history[step - 1]);
          if (a) expect(changed).toBeGreaterThan(0);
          else expect(changed).toBe(0);
        });
        expect(fused.p.every((x) => x.every(Number.isFinite))).toBe(true);
      });
    }

  it('is the only kernel an update runs', async () => {
    await tf.setBackend('wasm');
    const p = new Map(SHAPES.map((s, i) => [`w${i}`, newVar(tf.tensor(seeded(s, i), s))]));
    const g = new Map(SHAPES.map((s, i) => [`w${i}`, tf.tensor(seeded(s, 50 + i), s)]));
    const adam = new Adam([...p].map(([name, tensor]) => ({ name, tensor })));
    const scale = tf.scalar(0.5);
    const ok = tf.scalar(true, 'bool');
    const prof = await tf.profile(() => adam.update(p, g, 1e-3, scale, ok) as never);
    expect(prof.kernels.map((k) => k.name)).toEqual([FUSED_ADAM]);
    adam.dispose();
    tf.dispose([...p.values(), ...g.values(), scale, ok]);
  });

  it('bad inputs are one SbmError naming the input, with nothing allocated', async () => {
    await tf.setBackend('wasm');
    const a = tf.ones([3]);
    const b = tf.ones([4]);
    const flag = tf.scalar(1);
    const attrs = { count: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, stepSize: 1e-3, sqrtBc2: 1, scale: 1 };
    const cases: [string, tf.NamedTensorMap, Record<string, unknown>, string, RegExp][] = [
      ['missing m0', { p0: a, g0: a, v0: a }, attrs, 'INVALID_ARGUMENT', /input m0 is missing/],
      [
        'g0 of another shape',
        { p0: a, g0: b, m0: a, v0: a },
        attrs,
        'INVALID_SHAPE',
        /g0 must have the shape of p0 \[3\], got \[4\]/,
      ],
      [
        'a float apply flag',
        { p0: a, g0: a, m0: a, v0: a, apply: flag },
        attrs,
        'INVALID_ARGUMENT',
        /apply must be a bool scalar/,
      ],
      [
        'count 0',
        { p0: a, g0: a, m0: a, v0: a },
        { ...attrs, count: 0 },
        'INVALID_ARGUMENT',
        /count must be a positive integer, got 0/,
      ],
      [
        'no stepSize',
        { p0: a, g0: a, m0: a, v0: a },
        { ...attrs, stepSize: undefined },
        'INVALID_ARGUMENT',
        /stepSize must be a finite number/,
      ],
    ];
    const before = tf.memory().numTensors;
    const ids = tf.backend().numDataIds();
    for (const [what, inputs, at, code, message] of cases) {
      let err: unknown;
      try {
        tf.engine().runKernel(FUSED_ADAM, inputs, at as never);
      } catch (e) {
        err = e;
      }
      expect(isSbmError(err) && err.code, what).toBe(code);
      expect((err as Error).message, what).toMatch(message);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.backend().numDataIds()).toBe(ids);
    tf.dispose([a, b, flag]);
  });

  it('a gradient of the wrong shape is INVALID_SHAPE naming the weight, and nothing changes', async () => {
    await tf.setBackend('wasm');
    const p = new Map([['w', newVar(tf.ones([2, 3]))]]);
    const adam = new Adam([{ name: 'w', tensor: p.get('w')! }]);
    const g = new Map([['w', tf.ones([3, 2])]]);
    const before = tf.memory().numTensors;
    expect(() => adam.update(p, g, 1e-3)).toThrow(
      /grads\["w"\]: expected a float32 gradient of shape \[2,3\], got float32 \[3,2\]/,
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(adam.step).toBe(0);
    expect(Array.from(p.get('w')!.dataSync())).toEqual([1, 1, 1, 1, 1, 1]);
    adam.dispose();
    tf.dispose([...p.values(), ...g.values()]);
  });
});

/** A stand-in ScoreModel: the EMA only reads getWeights(). */
function fakeModel(vars: tf.Variable[]): ScoreModel {
  return {
    getWeights: () => vars.map((tensor, i) => ({ name: `w${i}`, tensor, trainable: true })),
  } as unknown as ScoreModel;
}

async function runEma(backend: string, fused: boolean, updates: number): Promise<Float32Array[]> {
  setFused(fused);
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const ids = tf.backend().numDataIds();
  const vars = SHAPES.map((s, i) => newVar(tf.tensor(seeded(s, 70 + i), s)));
  const model = fakeModel(vars);
  const ema = new ExponentialMovingAverage(model, { decay: 0.999 });
  for (let n = 0; n < updates; n++) {
    // The weights move between updates, as an optimizer step would move them.
    vars.forEach((v, i) =>
      tf.tidy(() => v.assign(tf.add(v, tf.tensor(seeded(SHAPES[i], 500 + 10 * n + i), SHAPES[i])))),
    );
    ema.update(model);
  }
  const out = values(ema.getWeights().map((w) => w.tensor));
  ema.dispose();
  tf.dispose(vars);
  expect(tf.memory().numTensors).toBe(before);
  expect(tf.backend().numDataIds()).toBe(ids);
  return out;
}

describe(`${FUSED_EMA} (EMA of every weight in one call, wasm)`, () => {
  it.each(SIMD_PATHS)(
    '$path: 6 warm-up updates: bit-identical to the composite on wasm and on cpu',
    async ({ simd }) => {
      const fused = await withSimd(simd, () => runEma('wasm', true, 6));
      const composite = await runEma('wasm', false, 6);
      const cpu = await runEma('cpu', false, 6);
      expect(mismatches(fused, composite)).toBe(0);
      expect(mismatches(fused, cpu)).toBe(0);
      // The shadows moved away from the initial weights.
      const initial = SHAPES.map((s, i) => seeded(s, 70 + i));
      expect(mismatches(fused, initial)).toBeGreaterThan(0);
    },
  );

  it('is the only kernel an update runs; bad inputs are one SbmError', async () => {
    await tf.setBackend('wasm');
    const vars = SHAPES.map((s, i) => newVar(tf.tensor(seeded(s, i), s)));
    const model = fakeModel(vars);
    const ema = new ExponentialMovingAverage(model, { decay: 0.99 });
    const prof = await tf.profile(() => ema.update(model) as never);
    expect(prof.kernels.map((k) => k.name)).toEqual([FUSED_EMA]);
    const a = tf.ones([2]);
    const before = tf.memory().numTensors;
    const ids = tf.backend().numDataIds();
    let err: unknown;
    try {
      tf.engine().runKernel(FUSED_EMA, { s0: a }, { count: 1, weight: 0.01 } as never);
    } catch (e) {
      err = e;
    }
    expect(isSbmError(err) && err.code).toBe('INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(/input p0 is missing/);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.backend().numDataIds()).toBe(ids);
    ema.dispose();
    tf.dispose([...vars, a]);
  });
});
