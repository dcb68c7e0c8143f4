import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import { decodeSafetensors } from '@sbm/safetensors';
import { importScoreSde, type ReferenceConfig } from '@sbm/interop';

const dir = new URL('./fixtures/', import.meta.url);
const FIXTURES = ['ve-ncsnpp', 'vp-ddpmpp', 'subvp-ddpmpp-ddpmblocks'] as const;

function load(name: string) {
  const checkpoint = new Uint8Array(readFileSync(new URL(`${name}/checkpoint_5.pth`, dir)));
  const config = JSON.parse(readFileSync(new URL(`${name}/config.json`, dir), 'utf8')) as ReferenceConfig & {
    params: number;
  };
  const golden = decodeSafetensors(new Uint8Array(readFileSync(new URL(`${name}/golden.safetensors`, dir)))).tensors;
  return { checkpoint, config, golden };
}

/** max |a − b| / max |b|: the relative error. */
async function relErr(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  expect(a.shape).toEqual(b.shape);
  const [d, m] = tf.tidy(() => [tf.max(tf.abs(tf.sub(a, b))), tf.max(tf.abs(b))]);
  const [dv, mv] = [(await d.data())[0], (await m.data())[0]];
  tf.dispose([d, m]);
  return dv / mv;
}

describeWithBackends(
  'importScoreSde: score_sde_pytorch golden fixtures',
  () => {
    for (const name of FIXTURES) {
      for (const weights of ['model', 'ema'] as const) {
        it(`${name}, ${weights} weights: score within 1e-4 of get_score_fn's`, async () => {
          const { checkpoint, config, golden } = load(name);
          const before = tf.memory().numTensors;
          const imported = importScoreSde({ checkpoint, config, weights });
          // The reference counts every nn.Parameter, the fixed Fourier W included.
          expect(imported.model.countParams({ includeFixed: true })).toBe(config.params);
          const score = imported.scoreFn(golden.x_nhwc, golden.t as tf.Tensor1D);
          const err = await relErr(score, golden[weights === 'ema' ? 'score_ema_nhwc' : 'score_raw_nhwc']);
          console.log(`${name} ${weights}: score rel err ${err.toExponential(2)}`);
          expect(err).toBeLessThan(1e-4);
          score.dispose();
          imported.model.dispose();
          expect(tf.memory().numTensors).toBe(before);
          tf.dispose(Object.values(golden));
        });
      }

      it(`${name}: every all_modules.N output within 1e-4 (raw weights)`, async () => {
        const { checkpoint, config, golden } = load(name);
        const before = tf.memory().numTensors;
        const { model } = importScoreSde({ checkpoint, config, weights: 'model' });
        const { activations, output } = model.applyWithActivations(golden.x_nhwc, golden.labels as tf.Tensor1D);
        const keys = Object.keys(golden).filter((k) => k.startsWith('act.all_modules.'));
        expect(keys.length).toBe(model.moduleCount);
        let worst = 0;
        for (const key of keys) {
          const i = Number(key.slice('act.all_modules.'.length));
          const ours = activations[i];
          const ref = golden[key];
          const nchw = ours.rank === 4 ? tf.transpose(ours, [0, 3, 1, 2]) : ours;
          const err = await relErr(nchw, ref);
          if (nchw !== ours) nchw.dispose();
          worst = Math.max(worst, err);
          expect(err, key).toBeLessThan(1e-4);
        }
        console.log(`${name}: worst module rel err ${worst.toExponential(2)} over ${keys.length} modules`);
        tf.dispose([output, ...activations]);
        model.dispose();
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose(Object.values(golden));
      });
    }
  },
  { backends: ['cpu', 'wasm'] },
);
