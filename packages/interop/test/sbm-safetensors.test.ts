import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { describeWithBackends, expectRejectsSbm, expectThrowsSbm } from '@sbm/test-harness';
import { MlpScoreModel, type ScoreModel } from '@sbm/models';
import {
  decodeSafetensorsRaw,
  encodeSafetensors,
  encodeSafetensorsRaw,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  type RawEntry,
} from '@sbm/safetensors';
import {
  exportSbmModel,
  exportSbmModelAsync,
  loadSbmModel,
  readSbmModelInfo,
  type SbmModelMetadata,
} from '@sbm/interop';

const SDE = { name: 'tutorial-ve', sigma: 25 };
const META: SbmModelMetadata = { sde: SDE, dataRange: [0, 1], step: 4750, weights: 'ema', extra: { note: 'test' } };

/** A small model with both kinds of weights: trainable dense layers and the fixed Fourier features W. */
function makeModel(seed = 3): ScoreModel {
  return new MlpScoreModel(
    { name: 'mlp', inputDim: 2, hidden: [16, 16], embedding: { type: 'fourier', dim: 16, scale: 16 } },
    seed,
  );
}

async function weightValues(m: ScoreModel): Promise<Map<string, { values: Float32Array; trainable: boolean }>> {
  const out = new Map<string, { values: Float32Array; trainable: boolean }>();
  for (const w of m.getWeights())
    out.set(w.name, { values: (await w.tensor.data()) as Float32Array, trainable: w.trainable });
  return out;
}

/** Rebuilds a file with its tensors and metadata passed through `edit` (for the corrupt-file cases). */
function rewrite(bytes: Uint8Array, edit: (entries: RawEntry[], meta: Record<string, string>) => void): Uint8Array {
  const raw = decodeSafetensorsRaw(bytes);
  const entries: RawEntry[] = Object.entries(raw.tensors).map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    values: t.values,
  }));
  const meta = { ...raw.metadata };
  edit(entries, meta);
  return encodeSafetensorsRaw(entries, meta);
}

describeWithBackends(
  'sbm model file (exportSbmModel / loadSbmModel)',
  () => {
    it('float32 round trip: every weight bit-exact, configs and metadata restored, same score', async () => {
      const model = makeModel();
      const before = tf.memory().numTensors;
      const bytes = exportSbmModel(model, { metadata: META });
      const { model: back, sde, metadata } = loadSbmModel(bytes);
      expect(back.toConfig()).toEqual(model.toConfig());
      expect(sde).toEqual(SDE);
      expect(metadata).toMatchObject({
        format: 'sbm-model',
        formatVersion: 1,
        dataRange: [0, 1],
        step: 4750,
        weights: 'ema',
        dtype: 'float32',
        extra: { note: 'test' },
      });
      const [a, b] = [await weightValues(model), await weightValues(back)];
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [name, { values }] of a) expect(b.get(name)!.values, name).toEqual(values);
      const x = tf.tensor2d([0.3, -1.2, 2, 0.5], [2, 2]);
      const t = tf.tensor1d([0.1, 0.9]);
      const [ya, yb] = [model.apply(x, t), back.apply(x, t)];
      expect(await yb.data()).toEqual(await ya.data());
      tf.dispose([x, t, ya, yb]);
      back.dispose();
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });

    it('float16: trainable weights are float32 rounded to nearest-even half, fixed ones stay exact', async () => {
      const model = makeModel();
      const before = tf.memory().numTensors;
      const f32 = exportSbmModel(model, { metadata: META });
      const f16 = exportSbmModel(model, { dtype: 'float16', metadata: META });
      const info = readSbmModelInfo(f16);
      expect(info.dtype).toBe('float16');
      const { model: back } = loadSbmModel(f16);
      const [a, b] = [await weightValues(model), await weightValues(back)];
      let trainableCount = 0;
      let fixedCount = 0;
      for (const [name, { values, trainable }] of a) {
        expect(info.tensors[name].dtype, name).toBe(trainable ? 'F16' : 'F32');
        const got = b.get(name)!.values;
        if (!trainable) {
          expect(got, name).toEqual(values);
          fixedCount += values.length;
          continue;
        }
        trainableCount += values.length;
        for (let i = 0; i < values.length; i++) {
          // Exactly the binary16 value nearest to the float32 one, and so within half an ulp: 2⁻¹¹ relative for
          // normal halves, 2⁻²⁵ absolute in the subnormal range.
          expect(got[i]).toBe(float16BitsToFloat32(float32ToFloat16Bits(values[i])));
          expect(Math.abs(got[i] - values[i])).toBeLessThanOrEqual(Math.max(Math.abs(values[i]) * 2 ** -11, 2 ** -25));
        }
      }
      expect(fixedCount).toBeGreaterThan(0);
      // Data bytes shrink by 2 per trainable value; the headers of the two files are about the same length.
      expect(f32.length - f16.length).toBeGreaterThan(2 * trainableCount - 64);
      expect(f32.length - f16.length).toBeLessThan(2 * trainableCount + 64);
      back.dispose();
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });

    it('exportSbmModelAsync writes the same bytes as exportSbmModel', async () => {
      const model = makeModel();
      for (const dtype of ['float32', 'float16'] as const) {
        const before = tf.memory().numTensors;
        const sync = exportSbmModel(model, { dtype, metadata: META });
        const asyncBytes = await exportSbmModelAsync(model, { dtype, metadata: META });
        expect(tf.memory().numTensors).toBe(before);
        expect(asyncBytes).toEqual(sync);
      }
      model.dispose();
    });

    it('refuses bad export options with one SbmError naming the option, allocating nothing', async () => {
      const model = makeModel();
      const before = tf.memory().numTensors;
      expectThrowsSbm(
        () => exportSbmModel({} as ScoreModel, { metadata: META }),
        'INVALID_ARGUMENT',
        /model: expected a ScoreModel/,
      );
      expectThrowsSbm(
        () => exportSbmModel(model, { dtype: 'bfloat16' as 'float16', metadata: META }),
        'INVALID_ARGUMENT',
        /dtype: expected "float16" or "float32", got "bfloat16"/,
      );
      expectThrowsSbm(
        () => exportSbmModel(model, { metadata: { ...META, step: -1 } }),
        'INVALID_ARGUMENT',
        /metadata\.step/,
      );
      expectThrowsSbm(
        () => exportSbmModel(model, { metadata: { ...META, dataRange: [1, 0] } }),
        'INVALID_ARGUMENT',
        /metadata\.dataRange/,
      );
      expectThrowsSbm(
        () => exportSbmModel(model, { metadata: { ...META, sde: { name: 'tutorial-vee' } } }),
        'UNKNOWN_NAME',
        /tutorial-vee/,
      );
      expectThrowsSbm(
        () => exportSbmModel(model, { metadata: { ...META, extra: { 'sbm.step': '1' } } }),
        'INVALID_ARGUMENT',
        /metadata\.extra\["sbm\.step"\]/,
      );
      expect(tf.memory().numTensors).toBe(before);
      // One weight beyond float16's largest finite value (65504): float16 would store Inf.
      const big = makeModel();
      const w = big.getWeights().find((x) => x.trainable)!;
      (w.tensor as tf.Variable).assign(tf.fill(w.tensor.shape, 7e4));
      const before2 = tf.memory().numTensors;
      expectThrowsSbm(
        () => exportSbmModel(big, { dtype: 'float16', metadata: META }),
        'UNSUPPORTED',
        new RegExp(`"${w.name}".*65504`),
      );
      await expectRejectsSbm(exportSbmModelAsync(big, { dtype: 'float16', metadata: META }), 'UNSUPPORTED', /65504/);
      expect(tf.memory().numTensors).toBe(before2);
      expect(exportSbmModel(big, { dtype: 'float32', metadata: META }).length).toBeGreaterThan(0);
      big.dispose();
      model.dispose();
    });

    it('rejects corrupt and foreign files with SbmError and leaves no tensors behind', () => {
      const model = makeModel();
      const good = exportSbmModel(model, { dtype: 'float16', metadata: META });
      const firstTrainable = model.getWeights().find((w) => w.trainable)!.name;
      const foreign = encodeSafetensors(Object.fromEntries(model.getWeights().map((w) => [w.name, w.tensor])));
      model.dispose();
      const before = tf.memory().numTensors;
      const cases: [string, () => unknown, string, RegExp][] = [
        [
          'not bytes',
          () => loadSbmModel('x' as unknown as Uint8Array),
          'INVALID_ARGUMENT',
          /bytes: expected a Uint8Array/,
        ],
        ['truncated', () => loadSbmModel(good.subarray(0, good.length - 10)), 'CORRUPT_CHECKPOINT', /truncated/],
        ['empty', () => loadSbmModel(new Uint8Array(0)), 'CORRUPT_CHECKPOINT', /too short/],
        ['foreign safetensors', () => loadSbmModel(foreign), 'CORRUPT_CHECKPOINT', /sbm\.format.*"sbm-model"/],
        [
          'newer format',
          () => loadSbmModel(rewrite(good, (_, m) => void (m['sbm.formatVersion'] = '2'))),
          'UNSUPPORTED',
          /formatVersion 2 is newer/,
        ],
        [
          'model config not JSON',
          () => loadSbmModel(rewrite(good, (_, m) => void (m['sbm.model'] = '{oops'))),
          'CORRUPT_CHECKPOINT',
          /sbm\.model.*not valid JSON/,
        ],
        [
          'unregistered model',
          () => loadSbmModel(rewrite(good, (_, m) => void (m['sbm.model'] = '{"name":"no-such-model"}'))),
          'UNKNOWN_NAME',
          /no-such-model/,
        ],
        [
          'bad data range',
          () => loadSbmModel(rewrite(good, (_, m) => void (m['sbm.dataRange'] = '[1]'))),
          'CORRUPT_CHECKPOINT',
          /dataRange/,
        ],
        [
          'missing tensor',
          () =>
            loadSbmModel(
              rewrite(
                good,
                (e) =>
                  void e.splice(
                    e.findIndex((x) => x.name === firstTrainable),
                    1,
                  ),
              ),
            ),
          'CORRUPT_CHECKPOINT',
          /1 missing/,
        ],
        [
          'extra tensor',
          () =>
            loadSbmModel(rewrite(good, (e) => void e.push({ name: 'stray', dtype: 'F32', shape: [1], values: [0] }))),
          'CORRUPT_CHECKPOINT',
          /1 unknown \(stray\)/,
        ],
        [
          'wrong shape',
          () =>
            loadSbmModel(
              rewrite(good, (e) => {
                const x = e.find((y) => y.name === firstTrainable)!;
                x.shape = [x.values.length];
              }),
            ),
          'CORRUPT_CHECKPOINT',
          /expected shape/,
        ],
        [
          'integer tensor',
          () =>
            loadSbmModel(
              rewrite(good, (e) => {
                const x = e.find((y) => y.name === firstTrainable)!;
                x.dtype = 'I32';
                x.values = Array.from(x.values, () => 0);
              }),
            ),
          'CORRUPT_CHECKPOINT',
          /expected dtype F32 or F16, got I32/,
        ],
        [
          'non-finite weight',
          () =>
            loadSbmModel(
              rewrite(good, (e) => {
                const x = e.find((y) => y.name === firstTrainable)!;
                x.values = Array.from(x.values, (v, i) => (i === 3 ? Infinity : v));
              }),
            ),
          'CORRUPT_CHECKPOINT',
          /non-finite value at index 3/,
        ],
      ];
      for (const [what, fn, code, message] of cases) {
        try {
          fn();
        } catch (e) {
          expectThrowsSbm(
            () => {
              throw e;
            },
            code,
            message,
          );
          expect(tf.memory().numTensors, what).toBe(before);
          continue;
        }
        throw new Error(`${what}: expected an SbmError`);
      }
    });
  },
  { backends: ['cpu', 'wasm'] },
);

describe('readSbmModelInfo', () => {
  it('stores a null data range (unbounded toy data) as null', async () => {
    await tf.setBackend('cpu');
    const model = makeModel();
    const info = readSbmModelInfo(exportSbmModel(model, { metadata: { ...META, dataRange: null } }));
    expect(info.dataRange).toBeNull();
    model.dispose();
  });

  it('reads the header only: configs, step and stored dtypes, without tensors', async () => {
    await tf.setBackend('cpu');
    const model = makeModel();
    const bytes = exportSbmModel(model, { dtype: 'float16', metadata: { ...META, weights: undefined } });
    const before = tf.memory().numTensors;
    const info = readSbmModelInfo(bytes);
    expect(tf.memory().numTensors).toBe(before);
    expect(info.model).toEqual(model.toConfig());
    expect(info.weights).toBe('model');
    expect(info.createdBy).toMatch(/^@sbm\/interop /);
    expect(Object.keys(info.tensors).sort()).toEqual(model.weightNames().sort());
    model.dispose();
  });
});
