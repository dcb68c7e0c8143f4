import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import { encodeGridPng, loadColoredMnist } from '@sbm/datasets/node';
import { loadData, parseDataSpec } from '../src/setup';
import { UsageError } from '../src/errors';
import { buildStaleDist, sbmAsync } from './helpers';

const tmp = mkdtempSync(join(tmpdir(), 'sbm-colored-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A narrow ScoreNet (the smallest widths its GroupNorm groups allow) keeps the 2-step runs short. */
const narrow = join(tmp, 'narrow.json');
writeFileSync(narrow, JSON.stringify({ model: { channels: [32, 32, 64, 128] } }));

/** Six coloured digits written as 28×28 RGB PNGs, and their bytes. */
const folder = join(tmp, 'pngs');
let pngBytes: Uint8Array;

beforeAll(async () => {
  buildStaleDist();
  mkdirSync(folder);
  const d = await loadColoredMnist({ n: 6, seed: 4 });
  const x = await d.images.data();
  tf.dispose([d.images, d.labels, d.foreground, d.background]);
  pngBytes = Uint8Array.from(x, (v) => Math.round(v * 255));
  for (let i = 0; i < 6; i++) {
    const pixels = pngBytes.subarray(i * 784 * 3, (i + 1) * 784 * 3);
    writeFileSync(join(folder, `digit-${i}.png`), encodeGridPng({ pixels, width: 28, height: 28, channels: 3 }));
  }
}, 300_000);

function trainedConfig(out: string) {
  const ptr = JSON.parse(readFileSync(join(out, 'checkpoint.json'), 'utf8')) as { slot: string; step: number };
  const cfg = JSON.parse(readFileSync(join(out, ptr.slot, 'config.json'), 'utf8')) as {
    model: { name: string; imageChannels: number; imageSize: number };
    dataRange: number[];
    data: { size: number; sampleShape: number[] };
  };
  const run = JSON.parse(readFileSync(join(out, 'sbm-run.json'), 'utf8')) as { data: string };
  return { step: ptr.step, run: run.data, model: cfg.model, dataRange: cfg.dataRange, data: cfg.data };
}

describe('--data colored-mnist', () => {
  it('parseDataSpec: colored-mnist and colored-mnist:train are the train split, colored-mnist:test the test split', () => {
    expect(parseDataSpec('colored-mnist')).toEqual({
      kind: 'colored-mnist',
      spec: 'colored-mnist:train',
      split: 'train',
      palette: 'random',
    });
    expect(parseDataSpec('colored-mnist-class')).toEqual({
      kind: 'colored-mnist',
      spec: 'colored-mnist-class:train',
      split: 'train',
      palette: 'class',
    });
    expect(parseDataSpec('colored-mnist-class:test')).toMatchObject({ split: 'test', palette: 'class' });
    expect(parseDataSpec(' colored-mnist:train ').spec).toBe('colored-mnist:train');
    expect(parseDataSpec('colored-mnist:test')).toMatchObject({ kind: 'colored-mnist', split: 'test' });
    for (const bad of ['colored-mnist:val', 'colored-mnist:', 'colour-mnist', 'colored-mnist-class:val']) {
      expect(() => parseDataSpec(bad)).toThrow(UsageError);
      expect(() => parseDataSpec(bad)).toThrow(new RegExp(`--data: expected .*colored-mnist.*got "${bad}"`));
    }
  });

  it('loadData: [n, 28, 28, 3] in the SDE range, the colours fixed (colour seed 0, not --seed), no leaks', async () => {
    const before = countTensors();
    const d = parseDataSpec('colored-mnist:test');
    const vp = await loadData(d, { n: 3, seed: 9, centered: true });
    const ve = await loadData(d, { n: 3, seed: 1, centered: false });
    expect(vp.sampleShape).toEqual([28, 28, 3]);
    expect(vp.range).toEqual([-1, 1]);
    expect(ve.range).toEqual([0, 1]);
    const a = await vp.x.data();
    const b = await ve.x.data();
    tf.dispose([vp.x, ve.x]);
    const ref = await loadColoredMnist({ n: 3, seed: 0, split: 'test' });
    const r = await ref.images.data();
    tf.dispose([ref.images, ref.labels, ref.foreground, ref.background]);
    expect(Buffer.from(b.buffer).equals(Buffer.from(r.buffer))).toBe(true);
    let maxErr = 0;
    for (let j = 0; j < a.length; j++) maxErr = Math.max(maxErr, Math.abs(a[j] - (2 * b[j] - 1)));
    expect(maxErr).toBeLessThan(3e-7);
    expect(countTensors()).toBe(before);
  });

  it('loadData: colored-mnist-class is the class-palette set of @sbm/datasets, not the random one', async () => {
    const before = countTensors();
    const c = await loadData(parseDataSpec('colored-mnist-class:test'), { n: 3, seed: 5, centered: false });
    const ref = await loadColoredMnist({ n: 3, seed: 0, split: 'test', palette: 'class' });
    const rnd = await loadColoredMnist({ n: 3, seed: 0, split: 'test' });
    const [a, r, q] = [await c.x.data(), await ref.images.data(), await rnd.images.data()];
    tf.dispose([c.x, ref.images, ref.labels, ref.foreground, ref.background]);
    tf.dispose([rnd.images, rnd.labels, rnd.foreground, rnd.background]);
    expect(Buffer.from(a.buffer).equals(Buffer.from(r.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(q.buffer))).toBe(false);
    expect(countTensors()).toBe(before);
  });

  it('a folder of colour PNGs loads as the same RGB values (byte / 255, channel order kept)', async () => {
    const before = countTensors();
    const f = await loadData(parseDataSpec(`folder:${folder}`), {
      seed: 0,
      centered: false,
      imageSize: 28,
      channels: 3,
    });
    expect(f.x.shape).toEqual([6, 28, 28, 3]);
    const x = await f.x.data();
    f.x.dispose();
    let maxErr = 0;
    for (let j = 0; j < x.length; j++) maxErr = Math.max(maxErr, Math.abs(x[j] - pngBytes[j] / 255));
    expect(maxErr).toBeLessThan(1e-6);
    expect(countTensors()).toBe(before);
  });

  it('sbm train trains a 3-channel ScoreNet for 2 steps on colored-mnist and on a folder of colour PNGs', async () => {
    const common = [
      '--sde',
      'tutorial-ve',
      '--model',
      'scorenet',
      '--config',
      narrow,
      '--steps',
      '2',
      '--batch',
      '2',
      '--sample-every',
      '0',
    ];
    const outColored = join(tmp, 'run-colored');
    const outFolder = join(tmp, 'run-folder');
    const [rc, rf] = await Promise.all([
      sbmAsync(['train', '--data', 'colored-mnist', '--n-data', '4', ...common, '--out', outColored], {
        cwd: tmp,
        timeout: 120_000,
      }),
      sbmAsync(
        ['train', '--data', `folder:${folder}`, '--image-size', '28', '--channels', '3', ...common, '--out', outFolder],
        { cwd: tmp, timeout: 120_000 },
      ),
    ]);
    expect(rc.code, rc.stderr).toBe(0);
    expect(rf.code, rf.stderr).toBe(0);
    const c = trainedConfig(outColored);
    const f = trainedConfig(outFolder);
    expect(c).toMatchObject({ step: 2, run: 'colored-mnist:train', dataRange: [0, 1] });
    expect(c.data).toMatchObject({ size: 4, sampleShape: [28, 28, 3] });
    expect(f).toMatchObject({ step: 2, run: `folder:${folder}`, dataRange: [0, 1] });
    expect(f.data).toMatchObject({ size: 6, sampleShape: [28, 28, 3] });
    for (const m of [c.model, f.model]) expect(m).toMatchObject({ name: 'scorenet', imageChannels: 3, imageSize: 28 });
  }, 120_000);
});
