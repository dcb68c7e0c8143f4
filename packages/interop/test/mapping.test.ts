import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SbmError } from '@sbm/core';
import { decodeSafetensors, encodeSafetensors } from '@sbm/safetensors';
import { createScoreFn } from '@sbm/models';
import {
  configFromReference,
  exportScoreSde,
  exportScoreSdeAsync,
  importScoreSde,
  type ReferenceConfig,
} from '@sbm/interop';

const dir = new URL('./fixtures/ve-ncsnpp/', import.meta.url);
const checkpoint = new Uint8Array(readFileSync(new URL('checkpoint_5.pth', dir)));
const config = JSON.parse(readFileSync(new URL('config.json', dir), 'utf8')) as ReferenceConfig;

function refusal(fn: () => unknown): SbmError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SbmError);
    return e as SbmError;
  }
  throw new Error('expected an SbmError, nothing was thrown');
}

const withModel = (patch: Record<string, unknown>): ReferenceConfig => ({
  ...config,
  model: { ...config.model, ...patch },
});

describe('configFromReference: unsupported configs name the key', () => {
  it('a model other than ncsnpp', () => {
    const e = refusal(() => configFromReference(withModel({ name: 'ddpm' })));
    expect(e.message).toMatch(/^config\.model\.name: expected "ncsnpp"/);
  });
  it('an unknown resblock type', () => {
    expect(refusal(() => configFromReference(withModel({ resblock_type: 'wide' }))).message).toMatch(
      /^config\.model\.resblock_type: expected "biggan" or "ddpm", got "wide"/,
    );
  });
  it('an unknown SDE and discrete training', () => {
    expect(refusal(() => configFromReference({ ...config, training: { sde: 'edm' }, sde: undefined })).message).toMatch(
      /config\.training\.sde/,
    );
    expect(
      refusal(() => configFromReference({ ...config, training: { ...config.training, continuous: false } })).message,
    ).toMatch(/config\.training\.continuous/);
  });
  it('the VE fixture maps to sbm names', () => {
    const c = configFromReference(config);
    expect(c.sde).toEqual({ name: 've', sigmaMin: 0.01, sigmaMax: 50, N: 1000 });
    expect(c.dataRange).toEqual([0, 1]);
    expect(c.model).toMatchObject({ name: 'score-sde-ncsnpp', nf: 8, chMult: [1, 2, 2], progressiveInput: 'residual' });
  });
});

describe('state-dict mapping: safetensors round trip, missing / extra / mis-shaped tensors', () => {
  it('exportScoreSde → importScoreSde (safetensors) gives the same score, with or without module.', async () => {
    const before = tf.memory().numTensors;
    const a = importScoreSde({ checkpoint, config, weights: 'ema' });
    const file = exportScoreSde(a.model);
    const b = importScoreSde({ checkpoint: file, config, weights: 'model' });
    // The same names with DataParallel's `module.` prefix load too.
    const d = decodeSafetensors(file);
    const prefixed = encodeSafetensors(
      Object.entries(d.tensors).map(([name, tensor]) => ({ name: `module.${name}`, tensor })),
    );
    tf.dispose(Object.values(d.tensors));
    const c = importScoreSde({ checkpoint: prefixed, config, weights: 'model' });
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 3);
    const t = tf.tensor1d([0.1, 0.8]);
    const [sa, sb, sc] = [a, b, c].map((m) => m.scoreFn(x, t));
    const diff = tf.tidy(() => tf.maximum(tf.max(tf.abs(tf.sub(sa, sb))), tf.max(tf.abs(tf.sub(sa, sc)))));
    expect((await diff.data())[0]).toBe(0);
    tf.dispose([x, t, sa, sb, sc, diff]);
    [a, b, c].forEach((m) => m.model.dispose());
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reference layouts in the export: OIHW convs, (out, in) Linear, NIN W as it is, sigmas', () => {
    const a = importScoreSde({ checkpoint, config, weights: 'model' });
    const d = decodeSafetensors(exportScoreSde(a.model));
    expect(d.tensors['all_modules.3.weight'].shape).toEqual([8, 3, 3, 3]);
    expect(d.tensors['all_modules.1.weight'].shape).toEqual([32, 16]);
    expect(d.tensors['all_modules.8.NIN_0.W'].shape).toEqual([16, 16]);
    expect(d.tensors['all_modules.10.Conv2d_0.weight'].shape).toEqual([16, 8, 3, 3]);
    expect(d.tensors.sigmas.shape).toEqual([1000]);
    expect(Object.keys(d.tensors).length).toBe(218);
    tf.dispose(Object.values(d.tensors));
    a.model.dispose();
  });

  it('missing, extra and mis-shaped tensors are errors naming them, and leak nothing', () => {
    const a = importScoreSde({ checkpoint, config, weights: 'model' });
    const d = decodeSafetensors(exportScoreSde(a.model));
    a.model.dispose();
    const before = tf.memory().numTensors;
    const variant = (f: (m: Record<string, tf.Tensor>) => void) => {
      const m = { ...d.tensors };
      f(m);
      return encodeSafetensors(m);
    };
    const missing = variant((m) => delete m['all_modules.4.Conv_0.bias']);
    expect(refusal(() => importScoreSde({ checkpoint: missing, config, weights: 'model' })).message).toMatch(
      /missing the tensor all_modules\.4\.Conv_0\.bias/,
    );
    const extraT = tf.zeros([2]);
    const extra = variant((m) => (m['all_modules.99.weight'] = extraT));
    expect(refusal(() => importScoreSde({ checkpoint: extra, config, weights: 'model' })).message).toMatch(
      /all_modules\.99\.weight/,
    );
    const wrongT = tf.zeros([8, 3, 1, 1]);
    const wrong = variant((m) => (m['all_modules.3.weight'] = wrongT));
    expect(refusal(() => importScoreSde({ checkpoint: wrong, config, weights: 'model' })).message).toMatch(
      /all_modules\.3\.weight: expected shape \[8, 3, 3, 3\], got \[8, 3, 1, 1\]/,
    );
    tf.dispose([extraT, wrongT]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(d.tensors));
  });

  it('weights "ema" on a bare state dict and a bad weights value are refused', () => {
    const a = importScoreSde({ checkpoint, config, weights: 'model' });
    const file = exportScoreSde(a.model);
    a.model.dispose();
    expect(refusal(() => importScoreSde({ checkpoint: file, config, weights: 'ema' })).message).toMatch(/^weights:/);
    expect(refusal(() => importScoreSde({ checkpoint, config, weights: 'best' as unknown as 'ema' })).message).toMatch(
      /^weights: expected "ema" or "model", got "best"/,
    );
  });
});

describe('the imported model is an ordinary sbm model', () => {
  it("createScoreFn(model, sde) gives the reference's score (VE: the same σ(t) labels)", async () => {
    const before = tf.memory().numTensors;
    const { model, sde, scoreFn } = importScoreSde({ checkpoint, config });
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 5);
    const t = tf.tensor1d([1e-5, 0.5]);
    const a = scoreFn(x, t);
    const b = createScoreFn(model, sde)(x, t);
    const rel = tf.tidy(() => tf.div(tf.max(tf.abs(tf.sub(a, b))), tf.max(tf.abs(a))));
    expect((await rel.data())[0]).toBeLessThan(1e-6);
    tf.dispose([x, t, a, b, rel]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('exportScoreSdeAsync writes the same bytes as exportScoreSde', async () => {
    const { model } = importScoreSde({ checkpoint, config });
    const [a, b] = [exportScoreSde(model), await exportScoreSdeAsync(model)];
    expect(b.length).toBe(a.length);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    model.dispose();
  });
});
