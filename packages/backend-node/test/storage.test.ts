import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isSbmError, withLeakCheck } from '@sbm/core';
import { FileCheckpointStorage, decodePng, pngOutput, type FsOps } from '@sbm/backend-node';

const fresh = () => mkdtempSync(join(tmpdir(), 'sbm-storage-test-'));

function tinyModel(seed: number): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 3, inputShape: [2], kernelInitializer: tf.initializers.randomNormal({ seed }) }));
  return m;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('FileCheckpointStorage', () => {
  it('round-trips a model through model.json + weights.bin with identical weights', async () => {
    const dir = fresh();
    const storage = new FileCheckpointStorage();
    const model = tinyModel(1);
    await model.save(storage.handler(dir));
    expect(readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].paths).toEqual(['./weights.bin']);
    // 2×3 kernel + 3 bias, float32.
    expect(readFileSync(join(dir, 'weights.bin')).byteLength).toBe((6 + 3) * 4);
    expect(await storage.exists(dir)).toBe(true);

    const loaded = await tf.loadLayersModel(storage.handler(dir));
    const a = model.getWeights().map((w) => Array.from(w.dataSync()));
    const b = loaded.getWeights().map((w) => Array.from(w.dataSync()));
    expect(b).toEqual(a);
    model.dispose();
    loaded.dispose();
  });

  it('leaves no tensors behind when saving and loading raw artifacts', async () => {
    const dir = fresh();
    const storage = new FileCheckpointStorage();
    await withLeakCheck(async () => {
      const w = tf.tensor1d([1, 2, 3]);
      const { data, specs } = await tf.io.encodeWeights({ w });
      w.dispose();
      await storage.handler(dir).save!({ modelTopology: { k: 1 }, weightSpecs: specs, weightData: data });
      const art = await storage.handler(dir).load!();
      const decoded = tf.io.decodeWeights(art.weightData!, art.weightSpecs!);
      expect(Array.from(decoded.w.dataSync())).toEqual([1, 2, 3]);
      decoded.w.dispose();
    }, 'storage round trip');
  });

  it('a failed save leaves the previous checkpoint byte-identical and no temporary files', async () => {
    const dir = fresh();
    const good = new FileCheckpointStorage();
    const m1 = tinyModel(1);
    await m1.save(good.handler(dir));
    const before = { json: readFileSync(join(dir, 'model.json')), bin: readFileSync(join(dir, 'weights.bin')) };

    // The second file written (model.json's temporary) fails as on a full disk.
    let writes = 0;
    const failing: FsOps = {
      ...(await import('../src/atomic')).nodeFs,
      async writeFileSynced(path, data) {
        writes++;
        if (writes === 2) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        return (await import('../src/atomic')).nodeFs.writeFileSynced(path, data);
      },
    };
    const m2 = tinyModel(2);
    const err = await m2.save(new FileCheckpointStorage({ fs: failing }).handler(dir)).catch((e: unknown) => e);
    expect(isSbmError(err, 'IO_ERROR')).toBe(true);
    expect((err as Error).message).toContain('nothing was replaced');
    expect((err as Error).message).toContain('ENOSPC');
    expect(readFileSync(join(dir, 'model.json')).equals(before.json)).toBe(true);
    expect(readFileSync(join(dir, 'weights.bin')).equals(before.bin)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
    m1.dispose();
    m2.dispose();
  });

  it('writeFile is atomic too: a failing write keeps the old side file', async () => {
    const dir = fresh();
    const storage = new FileCheckpointStorage();
    await storage.writeFile(dir, 'config.json', '{"a":1}');
    const failing = new FileCheckpointStorage({
      fs: {
        ...(await import('../src/atomic')).nodeFs,
        async writeFileSynced() {
          throw new Error('EIO: i/o error');
        },
      },
    });
    await expect(failing.writeFile(dir, 'config.json', '{"a":2}')).rejects.toThrow(/EIO/);
    expect(new TextDecoder().decode(await storage.readFile(dir, 'config.json'))).toBe('{"a":1}');
    expect(readdirSync(dir)).toEqual(['config.json']);
  });

  it('clear errors: FILE_NOT_FOUND, CORRUPT_CHECKPOINT (bad JSON, missing or short weights), bad names', async () => {
    const storage = new FileCheckpointStorage();
    const empty = fresh();
    const e1 = await storage.handler(empty).load!().catch((e: unknown) => e);
    expect(isSbmError(e1, 'FILE_NOT_FOUND')).toBe(true);
    expect((e1 as Error).message).toContain(join(empty, 'model.json'));
    expect(await storage.exists(empty)).toBe(false);
    await expect(storage.readFile(empty, 'opt.bin')).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });

    const bad = fresh();
    writeFileSync(join(bad, 'model.json'), '{"modelTopology": ');
    await expect(storage.handler(bad).load!()).rejects.toMatchObject({ code: 'CORRUPT_CHECKPOINT' });

    const dir = fresh();
    const m = tinyModel(3);
    await m.save(storage.handler(dir));
    const bin = readFileSync(join(dir, 'weights.bin'));
    writeFileSync(join(dir, 'weights.bin'), bin.subarray(0, bin.length - 4));
    const e2 = await storage.handler(dir).load!().catch((e: unknown) => e);
    expect(isSbmError(e2, 'CORRUPT_CHECKPOINT')).toBe(true);
    expect((e2 as Error).message).toContain('hold 32 bytes but model.json describes 36');
    const { unlinkSync } = await import('node:fs');
    unlinkSync(join(dir, 'weights.bin'));
    await expect(storage.handler(dir).load!()).rejects.toMatchObject({ code: 'CORRUPT_CHECKPOINT' });
    m.dispose();

    await expect(storage.writeFile(dir, '../escape', 'x')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(existsSync(join(dir, '..', 'escape'))).toBe(false);
  });
});

describe('PNG output', () => {
  it('decodes to exactly the pixels encoded (gray, RGB, RGBA)', () => {
    const out = pngOutput();
    for (const channels of [1, 3, 4] as const) {
      const w = 5;
      const h = 3;
      // Deterministic pattern that uses the whole byte range.
      const pixels = Uint8Array.from({ length: w * h * channels }, (_, i) => (i * 37 + channels) % 256);
      const png = out.encodePng(pixels, w, h, channels);
      expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
      const img = decodePng(png);
      expect([img.width, img.height, img.channels]).toEqual([w, h, channels]);
      expect(Array.from(img.pixels)).toEqual(Array.from(pixels));
    }
  });

  it('writePng writes a decodable file; wrong sizes are INVALID_SHAPE', async () => {
    const dir = fresh();
    const out = pngOutput();
    const pixels = Uint8Array.from([0, 64, 128, 255]);
    await out.writePng(join(dir, 'a.png'), pixels, 2, 2, 1);
    expect(Array.from(decodePng(new Uint8Array(readFileSync(join(dir, 'a.png')))).pixels)).toEqual([0, 64, 128, 255]);
    expect(() => out.encodePng(pixels, 3, 2, 1)).toThrowError(/expected 3×2×1 = 6 bytes, got 4/);
    expect(() => out.encodePng(pixels, 2, 2, 2 as 1)).toThrowError(/channels: expected 1, 3 or 4, got 2/);
  });
});
