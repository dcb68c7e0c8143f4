import * as tf from '@tensorflow/tfjs';
import { decode, encode } from 'fast-png';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withLeakCheck } from '@sbm/core';
import { CORRUPT_DATA_CODE, gridFromArray, makeGrid } from '@sbm/datasets';
import { loadImageFolder, writeGridPng } from '@sbm/datasets/node';
import { expectSbm } from './helpers';

const tmp = mkdtempSync(join(tmpdir(), 'sbm-img-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('grid layout', () => {
  it('3 gray 2×2 images, 2 columns, padding 1: positions, padding and value mapping from [−1, 1]', () => {
    // image n has values n-th row of: [-1, 0, 1, 2] (2 clips to 255); 0 maps to round(127.5) = 128.
    const values = [-1, 0, 1, 2, 1, 1, 1, 1, -1, -1, -1, -1];
    const g = gridFromArray(values, [3, 2, 2, 1], { range: [-1, 1], columns: 2, padding: 1, padValue: 50 });
    expect([g.width, g.height, g.channels]).toEqual([7, 7, 1]);
    const at = (x: number, y: number): number => g.pixels[y * g.width + x];
    // image 0 at (1, 1)
    expect([at(1, 1), at(2, 1), at(1, 2), at(2, 2)]).toEqual([0, 128, 255, 255]);
    // image 1 at (4, 1), image 2 at (1, 4); the empty 4th cell and borders are padding
    expect([at(4, 1), at(5, 2)]).toEqual([255, 255]);
    expect([at(1, 4), at(2, 5)]).toEqual([0, 0]);
    expect([at(0, 0), at(3, 1), at(1, 3), at(4, 4), at(6, 6)]).toEqual([50, 50, 50, 50, 50]);
  });

  it('RGB samples, and rgba output for canvas', () => {
    const values = [1, 0, 0.5]; // one 1×1 RGB pixel in [0, 1]
    const rgb = gridFromArray(values, [1, 1, 1, 3], { range: [0, 1], padding: 0 });
    expect([rgb.width, rgb.height, rgb.channels, ...rgb.pixels]).toEqual([1, 1, 3, 255, 0, 128]);
    const rgba = gridFromArray([0.2], [1, 1, 1, 1], { range: [0, 1], padding: 1, format: 'rgba' });
    expect(rgba.channels).toBe(4);
    expect(Array.from(rgba.pixels.subarray((1 * 3 + 1) * 4, (1 * 3 + 1) * 4 + 4))).toEqual([51, 51, 51, 255]);
    expect(Array.from(rgba.pixels.subarray(0, 4))).toEqual([0, 0, 0, 255]);
  });

  it('rejects bad shapes and ranges', async () => {
    await expectSbm(
      () => gridFromArray([1, 2], [1, 1, 1, 2], { range: [0, 1] }),
      'INVALID_SHAPE',
      /expected 1 or 3 channels, got 2/,
    );
    await expectSbm(
      () => gridFromArray([1], [1, 1, 1, 1], { range: [1, 0] }),
      'INVALID_ARGUMENT',
      /grid: range: expected \[low, high\] with low < high/,
    );
  });

  it('writeGridPng writes exactly the grid, atomically, and leaks nothing', async () => {
    await withLeakCheck(async () => {
      const samples = tf.tidy(() => tf.reshape(tf.linspace(-1, 1, 4 * 3 * 5 * 3), [4, 3, 5, 3]));
      const expected = await makeGrid(samples, { range: [-1, 1] });
      const out = join(tmp, 'grids', 'g.png');
      const got = await writeGridPng(out, samples, { range: [-1, 1] });
      samples.dispose();
      expect(got).toEqual(expected);
      const png = decode(readFileSync(out));
      expect([png.width, png.height, png.channels]).toEqual([2 * (5 + 2) + 2, 2 * (3 + 2) + 2, 3]); // columns·(W + pad) + pad, rows·(H + pad) + pad
      expect(Array.from(png.data)).toEqual(Array.from(expected.pixels));
      expect(readdirSync(join(tmp, 'grids'))).toEqual(['g.png']); // no temporary left behind
    }, 'writeGridPng');
  });
});

describe('PNG folder', () => {
  const dir = join(tmp, 'images');
  mkdirSync(dir);
  // a.png: 4×4 gray whose 2×2 blocks are constant-sum patterns; b.png: 6×4 RGB (wider than tall); c.png: 16-bit gray.
  const gray = Uint8Array.from({ length: 16 }, (_, i) => i * 16);
  writeFileSync(join(dir, 'a.png'), encode({ width: 4, height: 4, data: gray, channels: 1, depth: 8 }));
  const rgb = new Uint8Array(6 * 4 * 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 6; x++) rgb.set([x * 40, y * 60, 200], (y * 6 + x) * 3);
  writeFileSync(join(dir, 'b.png'), encode({ width: 6, height: 4, data: rgb, channels: 3, depth: 8 }));
  const deep = Uint16Array.from({ length: 16 }, () => 0x8000 + 0x7f);
  writeFileSync(join(dir, 'c.png'), encode({ width: 4, height: 4, data: deep, channels: 1, depth: 16 }));
  writeFileSync(join(dir, 'notes.txt'), 'not an image');

  it('loads, converts, centre-crops and resizes (2× bilinear with half-pixel centres = 2×2 block means)', async () => {
    await withLeakCheck(async () => {
      const d = await loadImageFolder(dir, { size: 2, channels: 1 });
      expect(d.files).toEqual(['a.png', 'b.png', 'c.png']);
      expect(d.images.shape).toEqual([3, 2, 2, 1]);
      const v = d.images.arraySync() as number[][][][];
      // a.png block means: top-left pixels 0,16,64,80 → 40; top-right 32,48,96,112 → 72; bottom rows +128.
      const a = [v[0][0][0][0], v[0][0][1][0], v[0][1][0][0], v[0][1][1][0]].map((x) => x * 255);
      [40, 72, 168, 200].forEach((w, i) => expect(a[i]).toBeCloseTo(w, 3));
      // c.png: 16-bit 0x807f keeps its high byte 0x80 = 128.
      expect(v[2][0][0][0] * 255).toBeCloseTo(128, 3);
      tf.dispose(d.images);
    }, 'loadImageFolder gray');
  });

  it('RGB: the 6×4 image is cropped to its middle 4 columns before resizing', async () => {
    await withLeakCheck(async () => {
      const d = await loadImageFolder(dir, { size: 4, channels: 3, range: [-1, 1], limit: 2 });
      expect(d.files).toEqual(['a.png', 'b.png']);
      const b = (d.images.arraySync() as number[][][][])[1];
      // Crop starts at column 1: output column c has red (c + 1)·40; rows keep green y·60; blue 200.
      for (let y = 0; y < 4; y++) {
        for (let c = 0; c < 4; c++) {
          const px = b[y][c].map((x) => ((x + 1) / 2) * 255);
          expect(px[0]).toBeCloseTo((c + 1) * 40, 3);
          expect(px[1]).toBeCloseTo(y * 60, 3);
          expect(px[2]).toBeCloseTo(200, 3);
        }
      }
      // gray a.png replicated into three equal channels
      const a = (d.images.arraySync() as number[][][][])[0];
      expect(a[1][2][0]).toBe(a[1][2][1]);
      expect(a[1][2][1]).toBe(a[1][2][2]);
      tf.dispose(d.images);
    }, 'loadImageFolder rgb');
  });

  it('upscaling a constant image keeps it constant; RGB → gray uses BT.601 weights', async () => {
    const one = join(tmp, 'one');
    mkdirSync(one);
    writeFileSync(
      join(one, 'x.png'),
      encode({
        width: 2,
        height: 2,
        data: new Uint8Array(12).fill(0).map((_, i) => [100, 50, 200][i % 3]),
        channels: 3,
        depth: 8,
      }),
    );
    const d = await loadImageFolder(one, { size: 5, channels: 1 });
    const px = Array.from(d.images.dataSync()).map((x) => x * 255);
    // round(0.299·100 + 0.587·50 + 0.114·200) = round(82.15) = 82
    for (const p of px) expect(p).toBeCloseTo(82, 3);
    tf.dispose(d.images);
  });

  it('clear errors: missing folder, a file instead of a folder, no images, an undecodable file', async () => {
    await expectSbm(
      () => loadImageFolder(join(tmp, 'nope'), { size: 2 }),
      'FILE_NOT_FOUND',
      /folder .*nope does not exist/,
    );
    await expectSbm(
      () => loadImageFolder(join(dir, 'notes.txt'), { size: 2 }),
      'INVALID_ARGUMENT',
      /notes.txt is a file, expected a folder/,
    );
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'readme.md'), '#');
    await expectSbm(
      () => loadImageFolder(empty, { size: 2 }),
      'FILE_NOT_FOUND',
      /no .png files in .*empty \(1 other entries\)/,
    );
    const broken = join(tmp, 'broken');
    mkdirSync(broken);
    writeFileSync(join(broken, 'bad.png'), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    await expectSbm(() => loadImageFolder(broken, { size: 2 }), CORRUPT_DATA_CODE, /bad.png: not a decodable PNG/);
    await expectSbm(
      () => loadImageFolder(dir, { size: 0 }),
      'INVALID_ARGUMENT',
      /loadImageFolder: size: expected an integer >= 1, got 0/,
    );
  });
});
